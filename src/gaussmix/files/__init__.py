"""Files: model files (:mod:`.model`, save/load) and data tables (:mod:`.tables`,
CSV/TSV, ``.npy`` and Parquet)."""
