"""mlkeel: Kubeflow Pipelines components and pipelines for the whole life of a tabular ML model.

Where things live:
    mlkeel.components.<stage>.logic      plain functions (no kfp import): the behaviour of a stage
    mlkeel.components.<stage>.component  the thin KFP shell around that logic
    mlkeel.components.<stage>.cli        the ``python -m mlkeel.components.<stage>`` entry point
    mlkeel.pipelines                     pipelines composed from the components
    mlkeel.cli                           the ``mlkeel`` command
    mlkeel.local                         running pipelines under kfp.local
"""

__version__ = "0.1.0"
