// Command pause is the sandbox ("pause") container of mlkeel's real-node tests: the process that holds a pod's
// namespaces while its containers come and go. It does what upstream's pause does: wait for SIGINT or SIGTERM
// and exit 0, reaping any orphaned child that is re-parented to it (it runs as PID 1 of the pod's PID namespace
// when the pod shares one). Static (no cgo), so an image holding only this file runs: mlkeel.cluster.node
// makes that image with `docker import` (tag mlkeel/pause:<version>).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("mlkeel pause")
		return
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for received := range signals {
		if received != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "pause: %v, exiting\n", received)
			os.Exit(0)
		}
		for { // reap every child that has exited
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
