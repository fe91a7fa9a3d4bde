/* Fuzz target: msgpack record decoding (core/codec.c): the record head
 * (schema version, kind, updated_ms), every msgpack type a document may
 * hold, and the peeks a listing uses instead of decoding. codec_fuzz_one()
 * checks that the peeks agree with the full decoding and that whatever
 * decodes packs and decodes again to the same record. */
#include "codec.h"
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)codec_fuzz_one(data, size);
    return 0;
}
