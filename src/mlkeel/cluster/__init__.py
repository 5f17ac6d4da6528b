"""The cluster side of mlkeel.

Go tools of the project's own (built once, cached by version), the KFP backend's acceptance check of compiled
pipelines, and the local Kubernetes control plane the tests run against.
"""
