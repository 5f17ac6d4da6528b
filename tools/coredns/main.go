// Command coredns is CoreDNS built from the published Go module of one release (see go.mod) with only the
// plugins mlkeel's real node needs: the cluster DNS that answers pods' lookups of Service names
// (<service>.<namespace>.svc.cluster.local) from the test control plane's API.
//
// It follows CoreDNS's documented way of building with a custom plugin list: core/dnsserver and coremain, the
// plugin packages imported for their registration, and dnsserver.Directives set to the plugins' order (the
// order of upstream's plugin.cfg; a plugin runs in that order whatever the Corefile says). upstream's
// core/plugin (every plugin, cloud SDKs included) is not linked, so the build takes minutes, not ten.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives are the linked plugins in upstream plugin.cfg's order (core/dnsserver/zdirectives.go).
var directives = []string{
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"cache",
	"kubernetes",
	"loop",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
