"""Test-time selection: best-of-N, majority and weighted votes, self-certainty and Borda voting,
pass@k and maj@k (`methods`), answers clustered by math equivalence (`cluster`), and scaling
curves with bootstrap bands (`curves`)."""
