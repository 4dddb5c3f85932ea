package natsauth

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/natsauth/natsauthtest"
)

// world is a server started from a written configuration, with the streams
// and stores of skolebuss and two vendors' streams, each holding a message.
type world struct {
	s  *server.Server
	nc *nats.Conn // the admin's
}

// startWorld starts a nats-server from what Write writes for vendors a and
// b (vendor b's user replaced by loose, when given) and the admin, and
// makes, as the admin, the streams VENDOR_a, VENDOR_b, LMS, JOBS, EXPORTS,
// DLQ, the key-value bucket "quota" and the object store "exports", with one
// message or entry each.
func startWorld(t *testing.T, loose *User) world {
	t.Helper()
	vendors := vendorsA
	others := []User{admin}
	if loose != nil {
		vendors = vendorsA[1:] // a only
		others = append(others, *loose)
	}
	conf, err := server.ProcessConfigFile(writeConf(t, vendors, others...))
	if err != nil {
		t.Fatalf("nats-server refuses the written configuration: %v", err)
	}
	s := bustest.RunServer(t, func(o *server.Options) {
		conf.Host, conf.Port, conf.StoreDir, conf.JetStream = o.Host, o.Port, o.StoreDir, true
		conf.NoLog, conf.NoSigs, conf.DisableJetStreamBanner = o.NoLog, o.NoSigs, o.DisableJetStreamBanner
		*o = *conf
	})
	nc, js := bustest.Connect(t, s, nats.UserInfo("admin", testEnv["ADMIN_PASSWORD"]))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "VENDOR_a", Subjects: []string{"vendor.a.>"}, AllowDirect: true},
		{Name: "VENDOR_b", Subjects: []string{"vendor.b.>"}, AllowDirect: true},
		{Name: "LMS", Subjects: []string{"lms.>"}, AllowDirect: true},
		{Name: "JOBS", Subjects: []string{"jobs.export.>"}, Retention: jetstream.WorkQueuePolicy, AllowDirect: true},
		{Name: "EXPORTS", Subjects: []string{"exports.fetched.>"}, AllowDirect: true},
		{Name: "DLQ", Subjects: []string{"dlq.>"}, AllowDirect: true},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatalf("stream %s: %v", sc.Name, err)
		}
		subj := strings.TrimSuffix(sc.Subjects[0], ">") + "t1.person.created"
		if _, err := js.Publish(ctx, subj, []byte(`{"secret":"`+sc.Name+`"}`)); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "VENDOR_a", jetstream.ConsumerConfig{Durable: "a", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "quota"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "app1", []byte("41")); err != nil {
		t.Fatal(err)
	}
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "exports"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "t1-export", []byte("<enterprise/>")); err != nil {
		t.Fatal(err)
	}
	// Every resync request is answered, naming the subject it came on.
	if _, err := nc.Subscribe("vendorreq.*.resync.*", func(m *nats.Msg) { _ = m.Respond([]byte("resync " + m.Subject)) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return world{s: s, nc: nc}
}

// vendorConn is a vendor's connection (natsauthtest.Vendor).
type vendorConn = natsauthtest.Vendor

func connectVendor(t *testing.T, w world, vendor, password string) vendorConn {
	t.Helper()
	return natsauthtest.Connect(t, w.s.ClientURL(), UserName(vendor), password, InboxPrefix(vendor))
}

type probe struct {
	name string
	run  func(world, vendorConn) error
}

// refusals are what vendor b must be refused. Each returns nil only when the
// server refused it with a permissions violation.
func refusals() []probe {
	var ps []probe
	for _, c := range []struct{ subject, publishOn string }{
		{"vendor.a.>", "vendor.a.t1.person.created"},
		{"vendor.>", "vendor.a.t1.person.created"},
		{"lms.>", "lms.t1.person.created"},
		{"jobs.>", "jobs.export.t1"},
		{"exports.>", "exports.fetched.t1"},
		{"dlq.>", "dlq.fetch.t1"},
		{"$KV.quota.>", "$KV.quota.probe"},
		{"$O.exports.>", "$O.exports.M.probe"},
		{"vendorreq.a.>", "vendorreq.a.resync.t1"},
		{"_INBOX_a.>", "_INBOX_a.probe"},
		{"_INBOX.>", "_INBOX.probe"},
		{">", "lms.t1.person.created"},
	} {
		ps = append(ps, probe{"subscribe " + c.subject, func(w world, v vendorConn) error {
			return v.RefusedSubscribe(w.nc, c.subject, c.publishOn)
		}})
	}
	for _, stream := range []string{"VENDOR_a", "LMS", "JOBS", "EXPORTS", "DLQ", "KV_quota", "OBJ_exports"} {
		ps = append(ps,
			probe{"consumer on " + stream, func(_ world, v vendorConn) error {
				return v.RefusedConsumer(stream)
			}},
			probe{"ephemeral consumer on " + stream, func(_ world, v vendorConn) error {
				return v.RefusedRequest("$JS.API.CONSUMER.CREATE."+stream,
					[]byte(`{"stream_name":"`+stream+`","config":{"ack_policy":"explicit"}}`))
			}},
			probe{"legacy durable on " + stream, func(_ world, v vendorConn) error {
				return v.RefusedRequest("$JS.API.CONSUMER.DURABLE.CREATE."+stream+".sneak",
					[]byte(`{"stream_name":"`+stream+`","config":{"durable_name":"sneak","ack_policy":"explicit"}}`))
			}},
			probe{"direct get on " + stream, func(_ world, v vendorConn) error {
				return v.RefusedRequest("$JS.API.DIRECT.GET."+stream, []byte(`{"seq":1}`))
			}},
			probe{"direct get last by subject on " + stream, func(_ world, v vendorConn) error {
				return v.RefusedRequest("$JS.API.DIRECT.GET."+stream+".lms.t1.person.created", nil)
			}},
			probe{"message get on " + stream, func(_ world, v vendorConn) error {
				return v.RefusedRequest("$JS.API.STREAM.MSG.GET."+stream, []byte(`{"seq":1}`))
			}},
			probe{"stream info of " + stream, func(_ world, v vendorConn) error {
				return v.RefusedAPI("$JS.API.STREAM.INFO."+stream, func(ctx context.Context) error {
					_, err := v.JS.Stream(ctx, stream)
					return err
				})
			}},
		)
	}
	ps = append(ps,
		// Its own stream: reading past a consumer, and changing the stream.
		probe{"direct get on its own stream", func(_ world, v vendorConn) error {
			return v.RefusedRequest("$JS.API.DIRECT.GET.VENDOR_b", []byte(`{"seq":1}`))
		}},
		probe{"stream names", func(_ world, v vendorConn) error {
			return v.RefusedAPI("$JS.API.STREAM.NAMES", func(ctx context.Context) error {
				l := v.JS.StreamNames(ctx)
				for range l.Name() {
				}
				return l.Err()
			})
		}},
		probe{"stream list", func(_ world, v vendorConn) error {
			return v.RefusedRequest("$JS.API.STREAM.LIST", []byte(`{}`))
		}},
		probe{"the admin's consumer on VENDOR_a, pulled", func(_ world, v vendorConn) error {
			return v.RefusedRequest("$JS.API.CONSUMER.MSG.NEXT.VENDOR_a.a", []byte(`{"batch":1}`))
		}},
		probe{"a resync request for vendor a", func(w world, v vendorConn) error {
			// The admin answers every resync request: an answer means granted.
			return v.RefusedRequest("vendorreq.a.resync.t1", nil)
		}},
		probe{"a job", func(_ world, v vendorConn) error {
			return v.RefusedRequest("jobs.export.t1", nil)
		}},
		probe{"an event into vendor a's stream", func(_ world, v vendorConn) error {
			return v.RefusedRequest("vendor.a.t1.person.created", []byte(`{}`))
		}},
		probe{"an event into its own stream", func(_ world, v vendorConn) error {
			return v.RefusedRequest("vendor.b.t1.person.created", []byte(`{}`))
		}},
		// Last: granted, they remove its stream.
		probe{"purge of its own stream", func(_ world, v vendorConn) error {
			return v.RefusedRequest("$JS.API.STREAM.PURGE.VENDOR_b", nil)
		}},
		probe{"delete of its own stream", func(_ world, v vendorConn) error {
			return v.RefusedRequest("$JS.API.STREAM.DELETE.VENDOR_b", nil)
		}},
	)
	return ps
}

// The server refuses vendor b everything that is not its own: the other
// vendor's events, the canonical LMS stream, the jobs, the exports, the dead
// letters and the stores, by subscription, by consumer, by direct and
// message get and by stream info; the names of the streams; another
// vendor's resync requests and inbox, and every inbox.
func TestVendorIsRefusedWhatIsNotItsOwn(t *testing.T) {
	w := startWorld(t, nil)
	v := connectVendor(t, w, "b", "pw-vendor-b")
	for _, p := range refusals() {
		if err := p.run(w, v); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
}

// The probes of the refusals can fail: against a vendor b allowed every
// subject, each of them reports that it was not refused.
func TestRefusalProbesFailWhenGranted(t *testing.T) {
	w := startWorld(t, &User{Name: UserName("b"), Password: Password{Bcrypt: bcryptB}})
	v := connectVendor(t, w, "b", "pw-vendor-b")
	for _, p := range refusals() {
		if err := p.run(w, v); err == nil {
			t.Errorf("%s: reported refused by a server that grants it", p.name)
		}
	}
}

// Vendor b can do what it needs with its own: read its account's and its
// stream's info, make a durable pull consumer, pull and ack, make and delete
// an ephemeral one, and ask for a resync and get the answer on its inbox;
// and the server reports no violation on the way.
func TestVendorUsesItsOwn(t *testing.T) {
	w := startWorld(t, nil)
	v := connectVendor(t, w, "b", "pw-vendor-b")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := v.JS.AccountInfo(ctx); err != nil {
		t.Errorf("account info: %v", err)
	}
	st, err := v.JS.Stream(ctx, "VENDOR_b")
	if err != nil {
		t.Fatalf("its stream's info: %v", err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("its stream holds %d messages, want 1", n)
	}
	cons, err := v.JS.CreateOrUpdateConsumer(ctx, "VENDOR_b", jetstream.ConsumerConfig{
		Durable: "kit", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("durable consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
	}
	if batch.Error() != nil || len(got) != 1 || got[0] != `{"secret":"VENDOR_b"}` {
		t.Fatalf("pulled %q (%v), want its one event", got, batch.Error())
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	if info.AckFloor.Stream != 1 || info.NumAckPending != 0 {
		t.Errorf("the ack did not land: ack floor %d, pending %d", info.AckFloor.Stream, info.NumAckPending)
	}
	// A filtered ephemeral consumer, then removed.
	eph, err := v.JS.CreateConsumer(ctx, "VENDOR_b", jetstream.ConsumerConfig{
		FilterSubject: "vendor.b.t1.>", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("ephemeral consumer: %v", err)
	}
	if m, err := eph.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Errorf("ephemeral consumer's message: %v", err)
	} else if err := m.Ack(); err != nil {
		t.Errorf("ack: %v", err)
	}
	if err := v.JS.DeleteConsumer(ctx, "VENDOR_b", eph.CachedInfo().Name); err != nil {
		t.Errorf("delete its ephemeral consumer: %v", err)
	}
	// The legacy durable form answers too.
	if m, err := v.NC.Request("$JS.API.CONSUMER.DURABLE.CREATE.VENDOR_b.old",
		[]byte(`{"stream_name":"VENDOR_b","config":{"durable_name":"old","ack_policy":"explicit"}}`), 5*time.Second); err != nil || !bytes.Contains(m.Data, []byte(`"name":"old"`)) {
		t.Errorf("legacy durable: %v", err)
	}

	reply, err := v.NC.Request("vendorreq.b.resync.t1", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("resync request: %v", err)
	}
	if string(reply.Data) != "resync vendorreq.b.resync.t1" || !strings.HasPrefix(reply.Subject, "_INBOX_b.") {
		t.Errorf("resync answer %q on %s", reply.Data, reply.Subject)
	}
	if err := v.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := v.Reported(); err != nil {
		t.Errorf("the server reported: %v", err)
	}
}

// A vendor may make a push consumer on its own stream with any deliver
// subject (the server checks none against the vendor's permissions). What
// it delivers keeps its subjects in vendor.<it>.>, so no stream stores it:
// neither another vendor's stream nor the canonical one nor the jobs grow.
// A core subscriber on the deliver subject does receive it, so a responder
// on vendorreq.> must take the vendor from the message's subject, as the
// subject it was published on, and refuse a subject it cannot parse.
func TestVendorPushConsumerWritesIntoNoOtherStream(t *testing.T) {
	w := startWorld(t, nil)
	v := connectVendor(t, w, "b", "pw-vendor-b")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The admin's subscriber on the last deliver subject tells when b's
	// consumers have delivered.
	sub, err := w.nc.SubscribeSync("vendorreq.a.resync.t9")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, ds := range []string{"vendor.a.t9.person.created", "lms.t9.person.created", "jobs.export.t9", "vendorreq.a.resync.t9"} {
		if _, err := v.JS.CreateConsumer(ctx, "VENDOR_b", jetstream.ConsumerConfig{DeliverSubject: ds, AckPolicy: jetstream.AckNonePolicy}); err != nil {
			t.Fatalf("push consumer delivering to %s: %v", ds, err)
		}
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("the push consumer delivered nothing: %v", err)
	}
	if m.Subject != "vendor.b.t1.person.created" {
		t.Errorf("delivered on %s, want its stream's subject", m.Subject)
	}
	ajs, err := jetstream.New(w.nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"VENDOR_a", "LMS", "JOBS"} {
		st, err := ajs.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if n := st.CachedInfo().State.Msgs; n != 1 {
			t.Errorf("%s holds %d messages, want its 1", name, n)
		}
	}
}
