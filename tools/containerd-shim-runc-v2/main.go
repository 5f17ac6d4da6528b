// Command containerd-shim-runc-v2 is containerd's runc shim, upstream's main unchanged, built from the same
// containerd module and version as tools/containerd (see go.mod; mlkeel.cluster.node puts it beside containerd).
//
// A binary of its own rather than a part of tools/containerd: a shim loads every plugin registered in its
// program, and the daemon's plugins (content store, snapshotters, CRI) fail to load inside a shim.
package main

import (
	"context"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task/plugin"
	"github.com/containerd/containerd/v2/pkg/shim"
)

func main() {
	shim.RunShim(context.Background(), manager.NewShimManager("io.containerd.runc.v2"))
}
