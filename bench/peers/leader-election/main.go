// Command leader-election is one candidate of client-go's leader election on a Lease, for the kube-locks
// benchmarks. It prints one JSON line per event on stdout, each with the wall-clock time in Unix
// milliseconds, and gives up leadership (ReleaseOnCancel) when a line "release" arrives on stdin, when
// stdin closes, or on SIGTERM. With -watch it only watches the namespace's Leases with client-go and
// prints each change it sees ("watched", with the Lease's name and resourceVersion).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	coordinationv1api "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

func emit(event string, fields map[string]any) {
	line := map[string]any{"event": event, "t": float64(time.Now().UnixNano()) / 1e6}
	for k, v := range fields {
		line[k] = v
	}
	b, _ := json.Marshal(line)
	fmt.Println(string(b))
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "path to the kubeconfig file")
	namespace := flag.String("namespace", "default", "namespace of the Lease")
	name := flag.String("name", "bench", "name of the Lease")
	identity := flag.String("identity", "", "holder identity (default: host name and pid)")
	leaseDuration := flag.Duration("lease-duration", 15*time.Second, "LeaseDuration")
	renewDeadline := flag.Duration("renew-deadline", 10*time.Second, "RenewDeadline")
	retryPeriod := flag.Duration("retry-period", 2*time.Second, "RetryPeriod")
	watchOnly := flag.Bool("watch", false, "only watch the namespace's Leases and print each change")
	flag.Parse()
	klog.SetOutput(os.Stderr)

	if *identity == "" {
		host, _ := os.Hostname()
		*identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	config.QPS = 1000
	config.Burst = 1000
	client, err := coordinationv1.NewForConfig(config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			if scanner.Text() == "release" {
				break
			}
		}
		emit("releasing", nil)
		cancel()
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		emit("releasing", nil)
		cancel()
	}()

	if *watchOnly {
		if err := watch(ctx, client, *namespace); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		emit("stopped", nil)
		return
	}

	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: *namespace, Name: *name},
		Client:     client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: *identity},
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   *leaseDuration,
		RenewDeadline:   *renewDeadline,
		RetryPeriod:     *retryPeriod,
		ReleaseOnCancel: true,
		Name:            *name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { emit("leader", map[string]any{"identity": *identity}) },
			OnStoppedLeading: func() { emit("stopped-leading", nil) },
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	emit("started", map[string]any{"identity": *identity})
	elector.Run(ctx)
	emit("stopped", nil)
}

// watch lists the namespace's Leases, watches from the list's resourceVersion and prints every change
// until ctx ends; a watch the server closes is resumed from the last resourceVersion seen.
func watch(ctx context.Context, client *coordinationv1.CoordinationV1Client, namespace string) error {
	list, err := client.Leases(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	resourceVersion := list.ResourceVersion
	for ctx.Err() == nil {
		w, err := client.Leases(namespace).Watch(ctx, metav1.ListOptions{ResourceVersion: resourceVersion})
		if err != nil {
			return err
		}
		emit("watching", nil)
		for event := range w.ResultChan() {
			lease, ok := event.Object.(*coordinationv1api.Lease)
			if !ok {
				continue
			}
			resourceVersion = lease.ResourceVersion
			emit("watched", map[string]any{"name": lease.Name, "rv": lease.ResourceVersion})
		}
		w.Stop()
	}
	return nil
}
