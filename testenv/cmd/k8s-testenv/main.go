// Command k8s-testenv is a multi-call binary holding the upstream control-plane
// components that driftless tests and demos run: call it as
// `k8s-testenv COMPONENT [flags]` or through a symlink named after the component.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	_ "time/tzdata" // CronJob time zones

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

var components = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if !isComponent(name) {
		if len(os.Args) < 2 || !isComponent(os.Args[1]) {
			fmt.Fprintf(os.Stderr, "usage: %s {%v} [flags]\n", name, components)
			os.Exit(2)
		}
		name = os.Args[1]
		args = os.Args[1:]
	}
	os.Exit(run(name, args))
}

func isComponent(name string) bool {
	for _, c := range components {
		if c == name {
			return true
		}
	}
	return false
}

func run(name string, args []string) int {
	switch name {
	case "etcd":
		etcdmain.Main(args)
		return 0
	case "kube-apiserver":
		return runCobra(apiserver.NewAPIServerCommand(), args)
	case "kube-controller-manager":
		return runCobra(controllermanager.NewControllerManagerCommand(), args)
	default:
		return runCobra(scheduler.NewSchedulerCommand(), args)
	}
}

// runCobra runs an upstream component command with the arguments after its name.
func runCobra(cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args[1:])
	return cli.Run(cmd)
}
