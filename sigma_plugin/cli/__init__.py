"""Command-line tools: ``sigma-plot`` (training curves), ``sigma-inspect`` (per-layer σ, γ and
entropy bounds of a checkpoint), ``sigma-export`` (fold σReparam into a stock fairseq
checkpoint). See docs/tools.md."""
