"""Unlabelled records in and predictions out: shared by `annotate`, `serve`
and `select`. Annotated corpora are read by `spacy_medner.corpora`."""
