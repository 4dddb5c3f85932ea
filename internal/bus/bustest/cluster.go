package bustest

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// RunCluster starts n nats-servers (RunServer, named node-1 … node-n, each
// with its own store) as one JetStream cluster, every server routed to every
// other, and waits until the cluster has a meta leader that knows all n
// peers and every server is current. opts change each server's options after
// its name, store and routes are set. The servers are shut down at the end
// of the test.
func RunCluster(t testing.TB, n int, opts ...Option) []*server.Server {
	t.Helper()
	// Reserve n route ports at once so that each server's routes can name
	// the others before any of them starts.
	ports := make([]int, n)
	var lns []net.Listener
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	dir := t.TempDir()
	servers := make([]*server.Server, n)
	for i := range n {
		name := fmt.Sprintf("node-%d", i+1)
		node := func(o *server.Options) {
			o.ServerName = name
			o.StoreDir = filepath.Join(dir, name)
			o.Cluster = server.ClusterOpts{Name: "skolebuss-test", Host: "127.0.0.1", Port: ports[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		servers[i] = RunServer(t, append([]Option{node}, opts...)...)
	}
	waitfor.Condition(t, 20*time.Second, func() error { return clusterReady(servers) })
	return servers
}

// clusterReady says why servers are not yet a JetStream cluster whose meta
// leader knows every one of them, all current; nil when they are.
func clusterReady(servers []*server.Server) error {
	var leader *server.Server
	for _, s := range servers {
		if s.JetStreamIsLeader() {
			leader = s
		}
	}
	if leader == nil {
		return errors.New("the JetStream cluster has no meta leader")
	}
	if peers := leader.JetStreamClusterPeers(); len(peers) != len(servers) {
		return fmt.Errorf("the meta leader %s knows %d peers %v, want %d", leader.Name(), len(peers), peers, len(servers))
	}
	for _, s := range servers {
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("server %s is not current", s.Name())
		}
	}
	return nil
}
