/// What a conv sim head does with its output s (B, C, H, W) between the loss and the backward
/// (`--sim-output`). The loss reads s only through its per-channel spatial std, so s need not
/// stay: `recompute` makes s a chunk of images at a time and computes each chunk again for the
/// backward (one extra sim-head conv forward a step, about a sixth of vgg8b's local step);
/// `keep` holds s whole instead (98 MiB at vgg8b's block 1, batch 128). The same bits either
/// way. Chunked local steps (`--chunk`) always recompute.
public enum SimOutput: String, Codable, Sendable, CaseIterable {
    case keep
    case recompute
}
