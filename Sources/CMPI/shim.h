#include <mpi.h>

// Open MPI spells its handles as macros over addresses of globals (MPI_COMM_WORLD is
// `&ompi_mpi_comm_world`), which Swift cannot import: these return them.
static inline MPI_Comm lw_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype lw_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype lw_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op lw_mpi_max(void) { return MPI_MAX; }
static inline MPI_Request lw_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *lw_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *lw_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
