//go:build tools

// Package kfpapiserver pins the Kubeflow Pipelines API server (a main package of the upstream module) so that
// `go build github.com/kubeflow/pipelines/backend/src/apiserver` in this folder builds it at the commit go.mod
// requires. No KFP code is copied: the build takes the package from the module cache. See README.md.
package kfpapiserver

import _ "github.com/kubeflow/pipelines/backend/src/apiserver"
