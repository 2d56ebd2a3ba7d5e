"""Files: model files (:mod:`.model`, save/load, with :mod:`.model_record` and
:mod:`.model_checks`) and data tables (:mod:`.tables`, CSV/TSV, ``.npy`` and Parquet)."""
