// Package embedded runs an in-process Kafka-protocol broker (franz-go's
// kfake) with a data directory, so that Vigia runs on one machine with no
// Kafka to install, through exactly the same client code as against a real
// cluster. It listens on 127.0.0.1 only.
package embedded

import (
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configures Start.
type Options struct {
	DataDir string
	Port    int // 0 picks a free port
	// SyncWrites fsyncs each produced batch before acknowledging it, so an
	// acknowledged webhook survives a machine crash, not only a process crash.
	SyncWrites bool
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
}

// Start starts the broker, reloading the topics and offsets kept in DataDir.
func Start(o Options) (*Broker, error) {
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded broker data dir: %w", err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("vigia-embedded"),
		kfake.DataDir(o.DataDir),
		kfake.Ports(o.Port),
	}
	if o.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &Broker{cluster: c}, nil
}

// Addrs returns the broker's host:port addresses.
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

// Close stops the broker and flushes its state to the data directory.
func (b *Broker) Close() { b.cluster.Close() }
