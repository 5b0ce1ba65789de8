"""The experiment model: the schema of an experiment file (``spec``, ``steps``), the catalogue of files, the
results of a run, and how observations are judged (``judge``) and a verdict concluded (``validate``)."""
