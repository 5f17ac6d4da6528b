"""Pipelines composed from mlkeel's components (installed as ``mlkeel.pipelines``).

Each ``<name>.py`` defines one ``@dsl.pipeline``; ``<name>.yaml`` beside it is its compiled, golden YAML.
"""

# Pipeline module name -> the pipeline function's name in it. ``mlkeel compile`` compiles each.
PIPELINES = {"training": "training_pipeline", "monitoring": "monitoring_pipeline", "tuning": "tuning_pipeline"}
