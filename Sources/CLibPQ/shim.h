// PostgreSQL's C client (Debian's libpq-dev), for the SQL connector's read-only connections.
#include <libpq-fe.h>
