"""The command line: ``python -m kit run|render|index|verify|mmmu-score|...``, the one
layer that may know every notebook."""
