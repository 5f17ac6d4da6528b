"""The tune stage: a seeded hyperparameter search, one pipeline task per trial."""

# Besides ``tune`` (propose): each compiled to components/tune/<name>.yaml by ``mlkeel compile``.
MORE_COMPONENTS = ("tune_trial", "tune_select")
