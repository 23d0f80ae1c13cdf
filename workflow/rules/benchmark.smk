# the benchmark rule (filled in below)
