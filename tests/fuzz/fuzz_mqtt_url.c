/* Fuzz target: the MQTT broker URL parser of feeds/mqtt.c (--mqtt:
 * mqtt:// and mqtts://, user:pass@ with percent-encoding, IP literals and
 * [v6], the port, ?ca= and &insecure=). The input is the URL. */
#include "feed.h"
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)feed_mqtt_fuzz_url(data, size);
    return 0;
}
