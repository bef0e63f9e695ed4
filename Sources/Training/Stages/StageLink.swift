import Layers
import MemoryLedger
import Tensors

/// The connection of one pipeline stage to its neighbours (an MPI rank in `MessagePassing`):
/// it sends forward to the next stage and receives from the previous one.
public protocol StageLink: AnyObject {
    /// This stage, from 0.
    var stage: Int { get }
    /// Stages in the run.
    var stageCount: Int { get }
    /// Sends to the next stage without waiting for it to receive: returns once the send has
    /// started. `handOff` is kept alive (and booked) until its send completes.
    /// `settle` bounds how many are outstanding.
    func send(_ kind: StageMessageKind, step: Int, labels: UnsafeBufferPointer<Int32>,
              blockStats: [BlockStepStats], handOff: Tensor?) throws
    /// Waits for the previous stage's next message; a hand-off is received into a tensor
    /// booked under `.input`, layer `layer`, in `ledger`.
    func receive(layer: Int, ledger: Ledger) throws -> StageMessage
    /// Waits until at most `inFlight` sends are outstanding (releasing the hand-offs of those
    /// that completed): a stage calls it before each training step, so that it computes with
    /// at most `inFlight` earlier hand-offs still held.
    func settle() throws
    /// Waits until every send has completed (the pipeline is drained up to here).
    func drain() throws
    /// Waits until every stage has reached this point.
    func barrier() throws
    /// The largest of `value` over all stages (every stage gets it).
    func maximum(_ value: Double) throws -> Double
    /// Sends a stage may have outstanding while it computes (each keeping its hand-off).
    var inFlight: Int { get }
}
