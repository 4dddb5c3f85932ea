package natsauth

import (
	"slices"
	"strings"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/fanout"
)

// A Verb is a JetStream API call as its subject names it after "$JS.API."
// ("STREAM.INFO"), or one of the two JetStream subjects that are not API
// calls: Ack and FlowControl.
type Verb string

// The verbs of the account: no stream in their subject.
const (
	AccountInfo Verb = "INFO"
	StreamNames Verb = "STREAM.NAMES"
	StreamList  Verb = "STREAM.LIST"
)

// The verbs of a stream: $JS.API.<verb>.<stream>.
const (
	StreamCreate    Verb = "STREAM.CREATE"
	StreamUpdate    Verb = "STREAM.UPDATE"
	StreamDelete    Verb = "STREAM.DELETE"
	StreamPurge     Verb = "STREAM.PURGE"
	StreamInfo      Verb = "STREAM.INFO"
	StreamMsgGet    Verb = "STREAM.MSG.GET"
	StreamMsgDelete Verb = "STREAM.MSG.DELETE"
	StreamSnapshot  Verb = "STREAM.SNAPSHOT"
	StreamRestore   Verb = "STREAM.RESTORE"
	StreamStepDown  Verb = "STREAM.LEADER.STEPDOWN"
	// DirectGet is both forms: $JS.API.DIRECT.GET.<stream> and, the last
	// message of a subject, $JS.API.DIRECT.GET.<stream>.<subject>.
	DirectGet     Verb = "DIRECT.GET"
	ConsumerNames Verb = "CONSUMER.NAMES"
	ConsumerList  Verb = "CONSUMER.LIST"
	// FlowControl is the answers to an ordered push consumer's flow control
	// and heartbeats, $JS.FC.<stream>.>, which reading an object needs.
	FlowControl Verb = "FC"
)

// The verbs of a consumer: $JS.API.<verb>.<stream>.<consumer>.
const (
	// ConsumerCreate is $JS.API.CONSUMER.CREATE.<stream>.<consumer> and
	// .<consumer>.<filter>; with the consumer "" it is the unnamed
	// (ephemeral) form $JS.API.CONSUMER.CREATE.<stream>.
	ConsumerCreate        Verb = "CONSUMER.CREATE"
	ConsumerDurableCreate Verb = "CONSUMER.DURABLE.CREATE"
	ConsumerInfo          Verb = "CONSUMER.INFO"
	ConsumerDelete        Verb = "CONSUMER.DELETE"
	ConsumerNext          Verb = "CONSUMER.MSG.NEXT"
	ConsumerPause         Verb = "CONSUMER.PAUSE"
	ConsumerUnpin         Verb = "CONSUMER.UNPIN"
	// Ack is $JS.ACK.<stream>.<consumer>.>: acks, naks and in-progress
	// acks of the consumer's messages.
	Ack Verb = "ACK"
)

// AccountVerbs, StreamVerbs and ConsumerVerbs are every verb, by what it
// names: the table the permission test tries.
var (
	AccountVerbs = []Verb{AccountInfo, StreamNames, StreamList}
	StreamVerbs  = []Verb{StreamCreate, StreamUpdate, StreamDelete, StreamPurge, StreamInfo, StreamMsgGet,
		StreamMsgDelete, StreamSnapshot, StreamRestore, StreamStepDown, DirectGet, ConsumerNames, ConsumerList,
		FlowControl}
	ConsumerVerbs = []Verb{ConsumerCreate, ConsumerDurableCreate, ConsumerInfo, ConsumerDelete, ConsumerNext,
		ConsumerPause, ConsumerUnpin, Ack}
)

// IsConsumerVerb reports whether v names a consumer.
func (v Verb) IsConsumerVerb() bool { return slices.Contains(ConsumerVerbs, v) }

// IsAccountVerb reports whether v names neither a stream nor a consumer.
func (v Verb) IsAccountVerb() bool { return slices.Contains(AccountVerbs, v) }

// AnyConsumer as a Grant's consumer is every consumer of the stream with a
// name (the ordered consumers nats.go names itself, never the unnamed form).
const AnyConsumer = "*"

// A Grant allows one verb on one stream (and, for a consumer's verb, one
// consumer or AnyConsumer). Account verbs have no stream.
type Grant struct {
	Verb     Verb
	Stream   string
	Consumer string
}

// Identity is one NATS user of the account as the description has it: the
// JetStream calls it may make, the other subjects it may publish on, its
// inbox. Permissions renders it for the server; Allows answers what it may
// do from the description itself.
type Identity struct {
	Name     string
	Password Password
	Comment  string
	// All gives every right in the account (the operator).
	All bool
	// InboxPrefix is where the answers to its requests arrive: the only
	// subjects it may subscribe to besides Subscribe are InboxPrefix.>.
	InboxPrefix string
	// API are the JetStream calls it may make.
	API []Grant
	// Publish are the subjects (wildcards allowed) it may publish on
	// besides the JetStream API: its stage's events, $KV.<bucket>.> and
	// $O.<bucket>.> of the stores it writes.
	Publish []string
	// Subscribe are subjects it may subscribe to besides its inbox.
	Subscribe []string
	// Responses lets it answer each request it receives once.
	Responses bool
	// Others are, per stream, the consumers another identity names
	// (durables): AnyConsumer does not reach them. Identities fills it.
	Others map[string][]string
}

// The pipeline identities' names.
const (
	Requester = "requester"
	Fetcher   = "fetcher"
	Publisher = "publisher"
	Fanout    = "fanout"
	Operator  = "operator"
	Provision = "provision"
)

// StageInboxPrefix is the inbox prefix of a pipeline identity: upper case,
// so it never equals a vendor's (InboxPrefix), whose names are lower case.
func StageInboxPrefix(name string) string { return "_INBOX_" + strings.ToUpper(name) }

// A message is read by its stream's message get: the streams have no
// direct get (bus's configurations leave AllowDirect off), so nats.go
// uses STREAM.MSG.GET; the object stores and buckets have it, and are read
// by DIRECT.GET.

// Stores and streams by name, as the JetStream API names them.
var (
	objExports   = "OBJ_" + bus.ObjectExports
	objSnapshots = "OBJ_" + bus.ObjectSnapshots
	objFanout    = "OBJ_" + bus.ObjectFanout
	kvQuota      = "KV_" + bus.KVQuota
	kvRateLimit  = "KV_" + bus.KVRateLimit
	kvAttempts   = "KV_" + bus.KVAttempts
)

// BaseStreams are the streams, object stores (OBJ_) and key-value buckets
// (KV_) of every pipeline, as the JetStream API names them.
func BaseStreams() []string {
	return []string{bus.StreamJobs, bus.StreamExports, bus.StreamLMS, bus.StreamDLQ, bus.StreamAlerts,
		objExports, objSnapshots, kvQuota, kvRateLimit, kvAttempts}
}

// AllStreams are BaseStreams, the fan-out's store and each vendor's stream.
func AllStreams(vendors []string) []string {
	out := append(BaseStreams(), objFanout)
	for _, v := range vendors {
		out = append(out, bus.VendorStream(v))
	}
	return out
}

// Identities is the description every permission is rendered from: the
// pipeline's identities (requester, fetcher, publisher, fanout, operator,
// provision), then one per vendor, ordered by name. vendors are valid
// vendor names.
//
// No stage may create, update, delete or restore a stream or a store,
// delete a message, snapshot a stream or step a leader down: provision does
// the creating and updating, once at deploy (`skolebuss provision`), and
// nothing deletes but the operator. A stage may purge only an object store
// it writes (the fetcher and the publisher "exports", the publisher
// "snapshots", the fan-out "fanout"): the object store removes an object's
// chunks, when the object is deleted or replaced, by purging the chunks'
// subject, and the server cannot tell such a purge from a whole one. Every
// stage receives on its own inbox prefix only (StageInboxPrefix), so no
// stage reads another's answers.
func Identities(vendors []string) []Identity {
	ids := pipeline(vendors)
	for _, v := range slices.Sorted(slices.Values(vendors)) {
		ids = append(ids, vendorIdentity(v))
	}
	// A stage's ordered consumers (AnyConsumer) must not reach another
	// identity's durable on the same stream: the publisher may not delete
	// the fan-out's.
	for i := range ids {
		for j, other := range ids {
			if i == j {
				continue
			}
			for _, g := range other.API {
				if g.Consumer == "" || g.Consumer == AnyConsumer || !ids[i].anyOn(g.Stream) ||
					slices.Contains(ids[i].named(g.Stream), g.Consumer) || slices.Contains(ids[i].Others[g.Stream], g.Consumer) {
					continue
				}
				if ids[i].Others == nil {
					ids[i].Others = map[string][]string{}
				}
				ids[i].Others[g.Stream] = append(ids[i].Others[g.Stream], g.Consumer)
			}
		}
	}
	return ids
}

// StageIdentity is the identity named name among the pipeline's (not a
// vendor's), with the configured vendors' streams where it names them.
func StageIdentity(name string, vendors []string) (Identity, bool) {
	for _, id := range Identities(vendors)[:len(pipeline(nil))] {
		if id.Name == name {
			return id, true
		}
	}
	return Identity{}, false
}

// pipeline are the pipeline's identities, Identities without the vendors'.
func pipeline(vendors []string) []Identity {
	return []Identity{requester(), fetcher(), publisher(), fanoutIdentity(vendors), operator(), provision(vendors)}
}

func requester() Identity {
	return Identity{
		Name: Requester, Password: Password{Env: "REQUESTER_PASSWORD"}, InboxPrefix: StageInboxPrefix(Requester),
		Comment: "Puts export jobs on the JOBS work queue (schedule and on demand).",
		API:     streams(StreamInfo, bus.StreamJobs),
		Publish: []string{"jobs.export.>"},
	}
}

func fetcher() Identity {
	return Identity{
		Name: Fetcher, Password: Password{Env: "FETCHER_PASSWORD"}, InboxPrefix: StageInboxPrefix(Fetcher),
		Comment: "Takes jobs, fetches exports into the object store \"exports\", announces them,\n" +
			"dead-letters failed jobs, shares quotas. It never reads an export's content.",
		API: concat(
			streams(StreamInfo, bus.StreamJobs, bus.StreamExports, bus.StreamDLQ, bus.StreamAlerts),
			durable(bus.StreamJobs, "fetcher"),
			// write an export, find a stored one, remove a partial one's
			// chunks; the sweep reads the store's subjects
			objectWrite(objExports),
			kv(kvQuota), kv(kvRateLimit), kv(kvAttempts),
		),
		Publish: []string{"exports.fetched.>", "dlq.fetch.>", "alerts.quota.>",
			"$O." + bus.ObjectExports + ".>", "$KV." + bus.KVQuota + ".>", "$KV." + bus.KVRateLimit + ".>",
			"$KV." + bus.KVAttempts + ".>"},
	}
}

func publisher() Identity {
	return Identity{
		Name: Publisher, Password: Password{Env: "PUBLISHER_PASSWORD"}, InboxPrefix: StageInboxPrefix(Publisher),
		Comment: "Turns fetched exports into change events on the LMS stream.",
		API: concat(
			streams(StreamInfo, bus.StreamExports, bus.StreamDLQ),
			durable(bus.StreamExports, "publisher"),
			// read an export, delete the one a new snapshot replaced; read
			// and replace snapshots
			objectWrite(objExports), objectWrite(objSnapshots),
			// the LMS stream, read: the tenant's last event before each
			// export, and on a redo the export's events already stored
			// (an ordered consumer from its export.started)
			streams(StreamInfo, bus.StreamLMS), streams(StreamMsgGet, bus.StreamLMS),
			ordered(bus.StreamLMS),
			kv(kvAttempts),
		),
		Publish: []string{"lms.>", "dlq.publish.>", "$O." + bus.ObjectExports + ".M.>",
			"$O." + bus.ObjectSnapshots + ".>", "$KV." + bus.KVAttempts + ".>"},
	}
}

func fanoutIdentity(vendors []string) Identity {
	id := Identity{
		Name: Fanout, Password: Password{Env: "FANOUT_PASSWORD"}, InboxPrefix: StageInboxPrefix(Fanout),
		Comment: "Delivers each export of the LMS stream to the stream of every vendor linked\n" +
			"to its tenant, and answers the vendors' resync requests on their inboxes.",
		API: concat(
			// ordered consumers over a tenant's events, the durable per
			// vendor (made, removed when the vendor goes), the tenant's
			// last export.completed for a resync
			streams(StreamInfo, bus.StreamLMS), streams(StreamMsgGet, bus.StreamLMS),
			ordered(bus.StreamLMS),
			// what it delivered last, per vendor and tenant
			objectWrite(objFanout),
			// a resync reads the tenant's snapshot and its export
			objectRead(objSnapshots), objectRead(objExports),
		),
		Publish:   []string{"$O." + bus.ObjectFanout + ".>"},
		Subscribe: []string{"vendorreq.*.resync.*"},
		Responses: true,
	}
	for _, v := range slices.Sorted(slices.Values(vendors)) {
		s := bus.VendorStream(v)
		c := fanout.ConsumerName(v)
		id.API = append(id.API,
			Grant{ConsumerCreate, bus.StreamLMS, c}, Grant{ConsumerInfo, bus.StreamLMS, c},
			Grant{ConsumerDelete, bus.StreamLMS, c}, Grant{ConsumerNext, bus.StreamLMS, c}, Grant{Ack, bus.StreamLMS, c},
			// an unlinking reads the last event of its subject first
			Grant{StreamInfo, s, ""}, Grant{StreamMsgGet, s, ""})
		id.Publish = append(id.Publish, "vendor."+v+".>")
	}
	return id
}

func operator() Identity {
	return Identity{
		Name: Operator, Password: Password{Env: "OPERATOR_PASSWORD"}, All: true,
		Comment: "The operator: `skolebuss replay`, `dlq`, `watch`, inspection with the nats\n" +
			"CLI. Every right in this account; its password belongs in the operator's\n" +
			"vault, not in a running service's environment.",
	}
}

// provision is `skolebuss provision`'s identity: it reads, creates and
// updates every stream and store, and can neither delete nor purge one,
// nor read a message.
func provision(vendors []string) Identity {
	id := Identity{
		Name: Provision, Password: Password{Env: "PROVISION_PASSWORD"}, InboxPrefix: StageInboxPrefix(Provision),
		Comment: "`skolebuss provision`, run once at deploy: creates the streams, stores and\n" +
			"buckets and updates their configuration. It cannot delete, purge or read them.",
		API: []Grant{{Verb: AccountInfo}},
	}
	for _, s := range AllStreams(vendors) {
		id.API = append(id.API, Grant{StreamInfo, s, ""}, Grant{StreamCreate, s, ""}, Grant{StreamUpdate, s, ""})
	}
	return id
}

// vendorIdentity is vendor's user: its own stream through its consumers,
// its resync requests, its own inbox.
func vendorIdentity(vendor string) Identity {
	s := StreamName(vendor)
	return Identity{
		Name: UserName(vendor), InboxPrefix: InboxPrefix(vendor),
		Comment: "Vendor " + vendor + ": its stream " + s + ", its resync requests and its inbox " +
			InboxPrefix(vendor) + ".> only.",
		API: []Grant{
			{Verb: AccountInfo}, {StreamInfo, s, ""},
			{ConsumerCreate, s, ""}, {ConsumerCreate, s, AnyConsumer}, {ConsumerDurableCreate, s, AnyConsumer},
			{ConsumerInfo, s, AnyConsumer}, {ConsumerNext, s, AnyConsumer}, {ConsumerDelete, s, AnyConsumer},
			{Ack, s, AnyConsumer},
		},
		Publish: []string{"vendorreq." + vendor + ".resync.*"},
	}
}

// streams grants verb on each stream.
func streams(verb Verb, names ...string) []Grant {
	out := make([]Grant, 0, len(names))
	for _, n := range names {
		out = append(out, Grant{verb, n, ""})
	}
	return out
}

// durable is a stage's own durable pull consumer on stream: make or update
// it, pull, ack.
func durable(stream, name string) []Grant {
	return []Grant{{ConsumerCreate, stream, name}, {ConsumerNext, stream, name}, {Ack, stream, name}}
}

// ordered is an ordered consumer on stream, which nats.go names itself:
// make it, pull, remove it.
func ordered(stream string) []Grant {
	return []Grant{{ConsumerCreate, stream, AnyConsumer}, {ConsumerNext, stream, AnyConsumer},
		{ConsumerDelete, stream, AnyConsumer}}
}

// kv is a key-value bucket looked up, read and written ($KV.<bucket>.> is
// in Publish).
func kv(stream string) []Grant {
	return []Grant{{StreamInfo, stream, ""}, {DirectGet, stream, ""}}
}

// objectRead is an object store looked up and read: metadata by direct
// get, chunks through an ordered push consumer and its flow control.
func objectRead(stream string) []Grant {
	return []Grant{{StreamInfo, stream, ""}, {DirectGet, stream, ""}, {ConsumerCreate, stream, AnyConsumer},
		{ConsumerDelete, stream, AnyConsumer}, {FlowControl, stream, ""}}
}

// objectWrite is objectRead and the purge of an object's chunks when it is
// replaced or deleted ($O.<bucket>.> is in Publish).
func objectWrite(stream string) []Grant {
	return append(objectRead(stream), Grant{StreamPurge, stream, ""})
}

func concat[T any](lists ...[]T) []T {
	var out []T
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// destructive are the verbs a user without a grant of them is denied on
// every stream, beside not being allowed them: a later allow with a
// wildcard cannot give one by mistake.
var destructive = []Verb{StreamCreate, StreamUpdate, StreamDelete, StreamPurge, StreamMsgDelete, StreamSnapshot,
	StreamRestore, StreamStepDown, ConsumerPause, ConsumerUnpin}

// Subjects are the subjects on which g's calls are published.
func (g Grant) Subjects() []string {
	switch {
	case g.Verb.IsAccountVerb():
		return []string{"$JS.API." + string(g.Verb)}
	case g.Verb == Ack:
		return []string{"$JS.ACK." + g.Stream + "." + g.Consumer + ".>"}
	case g.Verb == FlowControl:
		return []string{"$JS.FC." + g.Stream + ".>"}
	case g.Verb == DirectGet:
		return []string{"$JS.API.DIRECT.GET." + g.Stream, "$JS.API.DIRECT.GET." + g.Stream + ".>"}
	case g.Verb == ConsumerCreate && g.Consumer == "":
		return []string{"$JS.API.CONSUMER.CREATE." + g.Stream}
	case g.Verb == ConsumerCreate:
		s := "$JS.API.CONSUMER.CREATE." + g.Stream + "." + g.Consumer
		return []string{s, s + ".>"}
	case g.Verb.IsConsumerVerb():
		return []string{"$JS.API." + string(g.Verb) + "." + g.Stream + "." + g.Consumer}
	}
	return []string{"$JS.API." + string(g.Verb) + "." + g.Stream}
}

// Permissions renders id for the server: nil for every right.
func (id Identity) Permissions() *Permissions {
	if id.All {
		return nil
	}
	p := &Permissions{Responses: id.Responses}
	granted := map[Verb]bool{}
	for _, g := range id.API {
		granted[g.Verb] = true
		for _, s := range g.Subjects() {
			if !slices.Contains(p.Publish.Allow, s) {
				p.Publish.Allow = append(p.Publish.Allow, s)
			}
		}
	}
	p.Publish.Allow = append(p.Publish.Allow, id.Publish...)
	for _, v := range destructive {
		if !granted[v] {
			p.Publish.Deny = append(p.Publish.Deny, "$JS.API."+string(v)+".>")
		}
	}
	for _, g := range id.API {
		if g.Consumer != AnyConsumer {
			continue
		}
		for _, c := range id.Others[g.Stream] {
			p.Publish.Deny = append(p.Publish.Deny, Grant{g.Verb, g.Stream, c}.Subjects()...)
		}
	}
	if id.InboxPrefix != "" {
		p.Subscribe.Allow = append(p.Subscribe.Allow, id.InboxPrefix+".>")
	}
	p.Subscribe.Allow = append(p.Subscribe.Allow, id.Subscribe...)
	return p
}

// User is id as Write writes it.
func (id Identity) User() User {
	return User{Name: id.Name, Password: id.Password, Comment: id.Comment, Permissions: id.Permissions()}
}

// Allows reports whether the description lets id make the call verb on
// stream (and consumer, for a consumer's verb; "" is the unnamed form of
// ConsumerCreate). It reads the grants, not the rendered subjects.
func (id Identity) Allows(verb Verb, stream, consumer string) bool {
	if id.All {
		return true
	}
	for _, g := range id.API {
		if g.Verb == verb && g.Stream == stream && (g.Consumer == consumer ||
			(g.Consumer == AnyConsumer && consumer != "" && !slices.Contains(id.Others[stream], consumer))) {
			return true
		}
	}
	return false
}

// anyOn reports whether id has a grant for AnyConsumer on stream.
func (id Identity) anyOn(stream string) bool {
	return slices.ContainsFunc(id.API, func(g Grant) bool { return g.Stream == stream && g.Consumer == AnyConsumer })
}

// named are the consumers id's grants name on stream.
func (id Identity) named(stream string) []string {
	var out []string
	for _, g := range id.API {
		if g.Stream == stream && g.Consumer != "" && g.Consumer != AnyConsumer {
			out = append(out, g.Consumer)
		}
	}
	return out
}

// AllowsPublish reports whether id may publish on subject (a subject
// without wildcards, not of the JetStream API).
func (id Identity) AllowsPublish(subject string) bool {
	if id.All {
		return true
	}
	for _, p := range id.Publish {
		if within(subject, p) {
			return true
		}
	}
	return false
}

// AllowsSubscribe reports whether id may subscribe to subject (wildcards
// allowed): whether every subject it matches is within its inbox or a
// pattern of Subscribe.
func (id Identity) AllowsSubscribe(subject string) bool {
	if id.All {
		return true
	}
	if id.InboxPrefix != "" && within(subject, id.InboxPrefix+".>") {
		return true
	}
	for _, p := range id.Subscribe {
		if within(subject, p) {
			return true
		}
	}
	return false
}

// within reports whether every subject matched by sub (which may hold
// wildcards) is matched by pattern.
func within(sub, pattern string) bool {
	s, p := strings.Split(sub, "."), strings.Split(pattern, ".")
	for i, pt := range p {
		if pt == ">" {
			return len(s) > i
		}
		if i >= len(s) {
			return false
		}
		switch {
		case s[i] == ">":
			return false
		case pt == "*":
		case s[i] == "*" || s[i] != pt:
			return false
		}
	}
	return len(s) == len(p)
}

// Uses are the streams and stores id may read the info of, in the order
// of its grants: what a stage checks exists at start.
func (id Identity) Uses() []string {
	out := []string{}
	for _, g := range id.API {
		if g.Verb == StreamInfo && !slices.Contains(out, g.Stream) {
			out = append(out, g.Stream)
		}
	}
	return out
}
