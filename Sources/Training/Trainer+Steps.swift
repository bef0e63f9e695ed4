extension Trainer {
    /// Trains until ``TrainingConfig/epochs`` like ``run()``, calling `onStep` after every
    /// training step.
    ///
    /// `onStep` runs on the calling thread, between steps, after the step's update; the run
    /// waits for it, so keep it short (print, collect, or update a progress display). Each
    /// epoch still ends with evaluation on ``TrainingConfig/testSplit``, a line in
    /// `metrics.jsonl` and a checkpoint in the run folder.
    ///
    /// ```swift
    /// let epochs = try trainer.run { step in
    ///     if step.stepInEpoch % 10 == 0 { print(step.epoch, step.stepInEpoch, step.loss) }
    /// }
    /// ```
    ///
    /// - Parameter onStep: receives each step's ``TrainingStep``.
    /// - Returns: the metrics of the epochs run by this call, in order.
    /// - Throws: ``TrainingError`` (a loss that is not finite stops the run, naming the layer
    ///   and the step), or the error of a shard or file that cannot be read or written.
    @discardableResult
    public func run(onStep: (TrainingStep) -> Void) throws -> [EpochMetrics] {
        try withoutActuallyEscaping(onStep) { observer in
            stepObserver = observer
            defer { stepObserver = nil }
            return try run()
        }
    }

    /// The memory ledger's figures now: its high-water mark since the current (or last) epoch
    /// began, with the breakdown at that instant, the bytes live now, and the process's peak
    /// resident set.
    public func memorySummary() -> MemorySummary {
        MemorySummary(ledger: ledger)
    }
}
