// The NATS C client (Debian's libnats-dev), JetStream included.
#include <nats/nats.h>
