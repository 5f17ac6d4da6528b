//go:build tools

// Package argocontroller pins Argo Workflows v3.3.10 (the version KFP's 2.0.x backend deploys) so that
// `go build github.com/argoproj/argo-workflows/v3/cmd/workflow-controller` (and cmd/argoexec) in this folder
// builds it from the module proxy. Notes: tools/kfpapiserver/README.md. No Argo code is copied.
package argocontroller

import (
	_ "github.com/argoproj/argo-workflows/v3/cmd/argoexec"
	_ "github.com/argoproj/argo-workflows/v3/cmd/workflow-controller"
)
