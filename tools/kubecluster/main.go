// Command kubecluster is one binary holding a whole Kubernetes control plane for mlkeel's tests, built from the
// published Go modules of one Kubernetes release (see go.mod): etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok (fake nodes that run the pods Deployments create and report them Ready), and the
// two node components of the same release, kubelet and kube-proxy (a real node: tests/cluster/test_node.py).
//
// One binary with subcommands (as k3s and the old hyperkube do) so the packages the components share compile
// and link once. Each subcommand is the component's own command, unchanged: it takes the component's usual
// flags. The first argument picks it; the rest are the component's arguments:
//
//	kubecluster etcd --data-dir /tmp/etcd ...
//	kubecluster kube-apiserver --etcd-servers http://127.0.0.1:2379 ...
//	kubecluster version
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	_ "time/tzdata" // CronJob time zones, as the upstream mains import it

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric, as upstream
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kubeproxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
	kwokconfig "sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/signals"
)

// components maps a subcommand to the function that runs it and returns the process's exit code. Each reads
// its arguments from os.Args, which main has shifted so the component sees itself as the program.
var components = map[string]func() int{
	"etcd": func() int {
		etcdmain.Main(os.Args) // exits the process itself on error
		return 0
	},
	"kube-apiserver":          func() int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func() int { return cli.Run(controllermanager.NewControllerManagerCommand()) },
	"kube-scheduler":          func() int { return cli.Run(scheduler.NewSchedulerCommand()) },
	"kubelet":                 func() int { return cli.Run(kubelet.NewKubeletCommand(context.Background())) },
	"kube-proxy":              func() int { return cli.Run(kubeproxy.NewProxyCommand()) },
	"kwok":                    runKwok,
	"version":                 printVersions,
}

// runKwok starts kwok the way its own main does: global logging and config flags first, then its command.
func runKwok() int {
	// The Kubernetes components register --version on the global flag set at init; kwok's cobra command
	// declares its own boolean --version and takes the global set in too. Give kwok the clean global set its
	// own binary would have.
	pflag.CommandLine = pflag.NewFlagSet(os.Args[0], pflag.ExitOnError)
	flags := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flags.ParseErrorsAllowlist.UnknownFlags = true // the command's own flags are parsed by cobra below
	flags.Usage = func() {}
	ctx := signals.SetupSignalContext()
	ctx, logger := kwoklog.InitFlags(ctx, flags)
	ctx, err := kwokconfig.InitFlags(ctx, flags)
	if err != nil {
		logger.Error("Init config flags", "err", err)
		return 1
	}
	command := kwokcmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flags)
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("Execute exit", "err", err)
		return 1
	}
	return 0
}

// printVersions prints the module version of each component linked in, from the binary's build information.
func printVersions() int {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(os.Stderr, "no build information in this binary")
		return 1
	}
	wanted := map[string]string{
		"k8s.io/kubernetes":         "kubernetes",
		"k8s.io/apiserver":          "k8s.io/apiserver",
		"go.etcd.io/etcd/server/v3": "etcd",
		"sigs.k8s.io/kwok":          "kwok",
	}
	for _, module := range info.Deps {
		if label, ok := wanted[module.Path]; ok {
			version := module.Version
			if module.Replace != nil {
				version = module.Replace.Version
			}
			fmt.Printf("%s %s\n", label, version)
		}
	}
	fmt.Printf("go %s\n", info.GoVersion)
	return 0
}

func usage() {
	names := make([]string, 0, len(components))
	for name := range components {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: kubecluster COMPONENT [flags]\ncomponents: %v\n", names)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	run, ok := components[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "kubecluster: unknown component %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Args = os.Args[1:] // the component sees itself as argv[0] and its own flags after it
	os.Exit(run())
}
