//go:build tools

// Package kfpapiserver pins the Kubeflow Pipelines backend's main packages that the notes in README.md built
// (the API server, the persistence agent, the scheduled-workflow controller, the v2 driver and launcher), so that
// `go build github.com/kubeflow/pipelines/backend/src/...` in this folder builds them at the commit go.mod
// requires. No KFP code is copied: the build takes the packages from the module cache.
package kfpapiserver

import (
	_ "github.com/kubeflow/pipelines/backend/src/agent/persistence"
	_ "github.com/kubeflow/pipelines/backend/src/apiserver"
	_ "github.com/kubeflow/pipelines/backend/src/crd/controller/scheduledworkflow"
	_ "github.com/kubeflow/pipelines/backend/src/v2/cmd/driver"
	_ "github.com/kubeflow/pipelines/backend/src/v2/cmd/launcher-v2"
)
