// The Reports module turns what the memory ledger recorded into reports (DESIGN.md section 5).
//
// Inputs are plain values captured from a `Ledger` (`ModeProfile`, `MemoryComparison`); outputs
// are a terminal summary, `memory.json`, a self-contained `memory.html` and a Perfetto
// `trace.json`, written together by `ReportWriter`. This module reads ledger data only: it never
// imports Layers or Training, so the trainer fills the per-layer facts it alone knows
// (`LayerRow`) and hands them in.
