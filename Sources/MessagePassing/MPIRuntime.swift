#if MPI
import CMPI
#endif
import Foundation
import Training

/// Starting and ending the MPI side of a pipelined run (`layerwise train --stages S` under
/// `mpirun -np S`). Built without the package's MPI trait, it says so instead.
public enum MPIRuntime {
    /// Whether this build links MPI (`swift build --traits MPI`).
    public static var isAvailable: Bool {
        #if MPI
        return true
        #else
        return false
        #endif
    }

    /// Whether a launcher started this process as one of several ranks: Open MPI's mpirun sets
    /// OMPI_COMM_WORLD_SIZE, PMIx launchers PMIX_RANK, MPICH's Hydra PMI_SIZE.
    public static var launchedByLauncher: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { environment[$0] != nil }
    }

    /// Joins the run's `stages` processes and returns this one's link to its neighbours.
    ///
    /// - Parameters:
    ///   - batchSize: the largest batch a message carries (training and evaluation).
    ///   - blocks: hidden blocks of the model (their statistics travel with each batch).
    ///   - inFlight: sends a stage may have started that its neighbour has not received yet.
    /// - Throws: ``TrainingError/stages(_:)`` when the build has no MPI, the process was not
    ///   started by mpirun, or mpirun started another number of processes.
    public static func start(stages: Int?, batchSize: Int, blocks: Int, inFlight: Int = 1) throws -> StageLink {
        let asked = stages.map(String.init) ?? "auto"
        #if MPI
        guard launchedByLauncher else {
            let n = stages.map(String.init) ?? "S"
            throw TrainingError.stages("--stages \(asked) runs one process per stage, started by mpirun: `mpirun -np \(n) layerwise train ... --stages \(asked)` (as root add --allow-run-as-root; more processes than cores need --oversubscribe)")
        }
        guard MPI_Init(nil, nil) == MPI_SUCCESS else { throw TrainingError.stages("MPI_Init failed") }
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(lw_mpi_comm_world(), &rank)
        MPI_Comm_size(lw_mpi_comm_world(), &size)
        if let stages, Int(size) != stages {
            throw TrainingError.stages("--stages \(stages) but mpirun started \(size) processes; give mpirun -np \(stages)")
        }
        guard size > 1 else {
            throw TrainingError.stages("--stages auto under a single process: start one process per stage (mpirun -np S), or train without --stages")
        }
        return MPIStageLink(stage: Int(rank), stageCount: Int(size), batchSize: batchSize, blocks: blocks, inFlight: inFlight)
        #else
        throw TrainingError.stages("this layerwise was built without MPI; build it with `swift build --traits MPI` (Open MPI's libopenmpi-dev installed) to run --stages \(asked)")
        #endif
    }

    /// Ends MPI after a run that went well (every stage calls it).
    public static func finish() {
        #if MPI
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
        #endif
    }

    /// Stops every stage of the run (after an error on this one); does not return under MPI.
    public static func abort(code: Int32) {
        #if MPI
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized != 0 { MPI_Abort(lw_mpi_comm_world(), code) }
        #endif
    }
}
