package main

// Settings for DynamoDB deployments past a handful of processes (issue 15):
// the fan-out mode of cross-process events and the feed's shard count. See
// schema/dynamodb.md, "Scaling past five processes".

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
)

// scaleOptions are the settings of large DynamoDB deployments (README
// "Configuration").
var scaleOptions = []option{
	stringOpt("peer-listen", "DynamoDB, many processes: address (host:port) of this process's endpoint for the other processes' change messages; turns on the fan-out mode (one leased stream reader instead of every process reading the stream)",
		func(c *Config) *string { return &c.PeerListen }),
	stringOpt("peer-url", "URL the other processes reach --peer-listen at (default http://<peer-listen>)",
		func(c *Config) *string { return &c.PeerURL }),
	stringOpt("peer-secret", "secret shared by every process in fan-out mode (at least 16 bytes); prefer the environment variable",
		func(c *Config) *string { return &c.PeerSecret }),
	intOpt("stream-leases", "fan-out mode: how many processes read the table's stream (1 to 8; default 1)",
		func(c *Config) *int { return &c.StreamLeases }),
	intOpt("feed-shards", "DynamoDB: spread each collection's feed over this many index keys (1 to 64; raises the table's setting, never lowers it; 0 leaves it)",
		func(c *Config) *int { return &c.FeedShards }),
}

// validateScale checks the settings of scaleOptions.
func (c Config) validateScale(bad func(flagName, format string, args ...any)) {
	kind, _, _ := ParseStore(c.Store)
	if c.FeedShards < 0 || c.FeedShards > dynamo.MaxFeedShards {
		bad("feed-shards", "must be between 0 and %d, got %d", dynamo.MaxFeedShards, c.FeedShards)
	} else if c.FeedShards > 0 && kind != StoreDynamoDB {
		bad("feed-shards", "only applies to --store dynamodb:<table>")
	}
	if c.StreamLeases < 0 || c.StreamLeases > 8 {
		bad("stream-leases", "must be between 1 and 8, got %d", c.StreamLeases)
	}
	if c.PeerListen == "" {
		for _, f := range []struct{ flag, v string }{{"peer-url", c.PeerURL}, {"peer-secret", c.PeerSecret}} {
			if f.v != "" {
				bad(f.flag, "needs --peer-listen (the fan-out mode)")
			}
		}
		if c.StreamLeases != 0 {
			bad("stream-leases", "needs --peer-listen (the fan-out mode)")
		}
		return
	}
	if kind != StoreDynamoDB {
		bad("peer-listen", "only applies to --store dynamodb:<table>")
	}
	host, port, err := net.SplitHostPort(c.PeerListen)
	if err != nil {
		bad("peer-listen", "%q is not host:port: %v", c.PeerListen, err)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("peer-listen", "%q has an invalid port %q", c.PeerListen, port)
	}
	if len(c.PeerSecret) < 16 {
		bad("peer-secret", "must be at least 16 bytes, and the same in every process")
	}
	if c.PeerURL != "" {
		if u, err := url.Parse(c.PeerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("peer-url", "%q is not an http:// or https:// URL", c.PeerURL)
		}
	} else if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		bad("peer-url", "required when --peer-listen %q names no host the other processes could reach", c.PeerListen)
	}
}

// dynamoOptions are the store options the configuration asks for (nil:
// defaults).
func (c Config) dynamoOptions() *dynamo.Options {
	if c.PeerListen == "" {
		return nil
	}
	u := c.PeerURL
	if u == "" {
		u = "http://" + c.PeerListen
	}
	return &dynamo.Options{Fanout: &dynamo.FanoutOptions{URL: u, Secret: c.PeerSecret, Leases: c.StreamLeases}}
}

// peerTimeout bounds reading one peer message; they are small.
const peerTimeout = 10 * time.Second

// startPeers serves the fan-out endpoint of st on --peer-listen, before the
// engine starts watching, so that the other processes' messages find it.
// stop closes it. A store not in fan-out mode needs nothing.
func startPeers(cfg Config, st store.Store, logger *slog.Logger) (stop func(), err error) {
	ds, ok := st.(*dynamo.Store)
	if cfg.PeerListen == "" || !ok {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.PeerListen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--peer-listen): %w", cfg.PeerListen, err)
	}
	srv := &http.Server{
		Handler:           ds.FanoutHandler(),
		ReadHeaderTimeout: peerTimeout,
		ReadTimeout:       peerTimeout,
		WriteTimeout:      peerTimeout,
		MaxHeaderBytes:    8 << 10,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("peer endpoint stopped", "addr", cfg.PeerListen, "err", err)
		}
	}()
	logger.Info("fan-out mode: serving the other processes' change messages", "peer_listen", ln.Addr().String(), "stream_leases", max(cfg.StreamLeases, 1))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// raiseFeedShards applies --feed-shards to the table.
func raiseFeedShards(ctx context.Context, cfg Config, st *dynamo.Store) error {
	if cfg.FeedShards == 0 {
		return nil
	}
	if err := st.RaiseFeedShards(ctx, cfg.FeedShards); err != nil {
		return fmt.Errorf("--feed-shards %d: %w", cfg.FeedShards, err)
	}
	return nil
}
