/* Fuzz target: msgpack record decoding (core/codec.c). */
#include "codec.h"
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rc = codec_fuzz_one(data, size);
    int kind = codec_record_peek_kind(data, size);
    return rc == 0 && kind < 0 ? -1 : 0; /* a decodable record has a kind */
}
