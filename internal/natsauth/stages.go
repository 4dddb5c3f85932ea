package natsauth

import (
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/fanout"
)

// StageUsers are the users of the pipeline's own processes, as the
// distributed deployment (deploy/nats) runs them: one per stage (requester,
// fetcher, publisher, fanout) with only the subjects and JetStream API calls
// that stage makes, and the operator with every right in the account. Each
// password is read by the server from the variable <USER>_PASSWORD
// (REQUESTER_PASSWORD, ...). vendors are the configured vendors' names: the
// fan-out's rights name their streams one by one.
//
// Why the allow lists look the way they do (deploy/nats_test.go runs the
// real stages as these users against a server built from the written file):
//
//   - "_INBOX.>" (subscribe): every JetStream API call, every JetStream
//     publish (the stream's ack) and every pull request is a request whose
//     answer comes back on the client's inbox; the stages use nats.go's
//     default _INBOX prefix.
//   - "$JS.API.STREAM.UPDATE.<name>" and "$JS.API.STREAM.CREATE.<name>" for
//     every stream and store: each process runs bus.Open, which provisions
//     every stream, object store and bucket at start (CreateOrUpdate: an
//     update that changes nothing, a create on the very first start). This
//     is the widest grant: a stage could change a stream's limits.
//   - "$JS.API.CONSUMER.CREATE.<stream>.<durable>.>" and
//     ".MSG.NEXT.<stream>.<durable>": the stage's own durable pull consumer,
//     created or updated at start, and its pull requests.
//   - "$JS.ACK.<stream>.<durable>.>": acks, naks with delay and in-progress
//     acks of that consumer's messages.
//   - "$JS.API.INFO": the account's JetStream usage and limits; nats.go
//     reads it before it makes a key-value bucket.
//   - "$KV.<bucket>.>" plus "$JS.API.DIRECT.GET.KV_<bucket>.>": key-value
//     writes are publishes on $KV.<bucket>.<key>; reads are direct gets.
//   - "$O.<bucket>.>" plus get and purge on OBJ_<bucket>: an object store
//     writes chunks and metadata as publishes, reads metadata by direct get,
//     reads chunks through an ordered consumer (whose flow-control answers
//     go to "$JS.FC.OBJ_<bucket>.>"), and purges the chunks of an object it
//     deletes or replaces.
//
// Nothing else is allowed: a stage cannot delete or purge a stream, read
// another stage's consumer, or publish outside its own subjects.
func StageUsers(vendors []string) []User {
	return []User{
		{
			Name: "requester", Password: Password{Env: "REQUESTER_PASSWORD"},
			Comment: "Puts export jobs on the JOBS work queue (schedule and on demand).",
			Permissions: &Permissions{
				Publish:   Rules{Allow: append([]string{"jobs.export.>"}, provisionBase()...)},
				Subscribe: Rules{Allow: []string{"_INBOX.>"}},
			},
		},
		{
			Name: "fetcher", Password: Password{Env: "FETCHER_PASSWORD"},
			Comment: "Takes jobs, fetches exports into the object store \"exports\", announces them,\n" +
				"dead-letters failed jobs, shares quotas. It never reads an export's content.",
			Permissions: &Permissions{
				Publish: Rules{Allow: concat(
					[]string{"exports.fetched.>", "dlq.fetch.>", "alerts.quota.>"},
					durable(bus.StreamJobs, "fetcher"),
					// write, find a stored export, purge a partial one, list
					// the store's subjects to sweep abandoned chunks
					[]string{"$O.exports.>", "$JS.API.DIRECT.GET.OBJ_exports.>", "$JS.API.STREAM.PURGE.OBJ_exports",
						"$JS.API.STREAM.INFO.OBJ_exports"},
					kv(bus.KVQuota), kv(bus.KVRateLimit), kv(attempts),
					provisionBase(), provision("KV_"+attempts),
				)},
				Subscribe: Rules{Allow: []string{"_INBOX.>"}},
			},
		},
		{
			Name: "publisher", Password: Password{Env: "PUBLISHER_PASSWORD"},
			Comment: "Turns fetched exports into change events on the LMS stream.",
			Permissions: &Permissions{
				Publish: Rules{Allow: concat(
					[]string{"lms.>", "dlq.publish.>"},
					durable(bus.StreamExports, "publisher"),
					// read an export; delete the one a new snapshot replaced
					[]string{"$O.exports.M.>"}, objectRead(bus.ObjectExports),
					[]string{"$O.snapshots.>"}, objectRead(bus.ObjectSnapshots),
					// the LMS stream, read: the tenant's last event before each
					// export, and on a redo the export's events already stored
					// (an ordered consumer from its export.started)
					[]string{"$JS.API.STREAM.INFO." + bus.StreamLMS, "$JS.API.STREAM.MSG.GET." + bus.StreamLMS,
						"$JS.API.CONSUMER.CREATE." + bus.StreamLMS + ".>", "$JS.API.CONSUMER.MSG.NEXT." + bus.StreamLMS + ".>",
						"$JS.API.CONSUMER.DELETE." + bus.StreamLMS + ".>"},
					kv(attempts),
					provisionBase(), provision("KV_"+attempts),
				)},
				Subscribe: Rules{Allow: []string{"_INBOX.>"}},
			},
		},
		fanoutUser(vendors),
		{
			Name: "operator", Password: Password{Env: "OPERATOR_PASSWORD"},
			Comment: "The operator: `skolebuss replay`, `dlq`, `watch`, inspection with the nats\n" +
				"CLI. Every right in this account; its password belongs in the operator's\n" +
				"vault, not in a running service's environment.",
		},
	}
}

// fanoutUser is the fan-out's user: it reads the LMS stream (its durable
// consumer per vendor, fanout-<vendor>, and ordered consumers over a
// tenant's events), writes each vendor's stream and its object store
// "fanout", and answers the vendors' resync requests.
func fanoutUser(vendors []string) User {
	allow := []string{
		// ordered consumers over a tenant's events (named by the server)
		// and the durable per vendor: create, pull, remove
		"$JS.API.CONSUMER.CREATE.LMS.>", "$JS.API.CONSUMER.MSG.NEXT.LMS.>", "$JS.API.CONSUMER.DELETE.LMS.>",
	}
	for _, v := range vendors {
		s := bus.VendorStream(v)
		allow = append(allow,
			// what it delivers, and the acks of the vendor's durable on LMS
			"vendor."+v+".>", "$JS.ACK.LMS."+fanout.ConsumerName(v)+".>",
			// an unlinking reads the last one of its subject first
			"$JS.API.STREAM.INFO."+s, "$JS.API.STREAM.MSG.GET."+s,
		)
		allow = append(allow, provision(s)...)
	}
	allow = concat(allow,
		[]string{"$O." + bus.ObjectFanout + ".>"}, objectRead(bus.ObjectFanout), provision("OBJ_"+bus.ObjectFanout),
		// a resync reads the tenant's snapshot and its export object, and
		// the tenant's last export.completed on the LMS stream
		objectReadOnly(bus.ObjectSnapshots), objectReadOnly(bus.ObjectExports),
		[]string{"$JS.API.STREAM.INFO." + bus.StreamLMS, "$JS.API.STREAM.MSG.GET." + bus.StreamLMS},
		provisionBase())
	return User{
		Name: "fanout", Password: Password{Env: "FANOUT_PASSWORD"},
		Comment: "Delivers each export of the LMS stream to the stream of every vendor linked\n" +
			"to its tenant, and answers the vendors' resync requests on their inboxes.",
		Permissions: &Permissions{
			Publish: Rules{Allow: allow},
			// the resync requests of every vendor, answered once each
			Subscribe: Rules{Allow: []string{"_INBOX.>", "vendorreq.*.resync.*"}},
			Responses: true,
		},
	}
}

// attempts is the key-value bucket internal/worker counts real attempts in.
const attempts = "attempts"

// provisionBase is what bus.Open provisions at start: every stream and
// store, and the account's info it reads before making a bucket.
func provisionBase() []string {
	out := []string{"$JS.API.INFO"}
	for _, s := range []string{bus.StreamJobs, bus.StreamExports, bus.StreamLMS, bus.StreamDLQ, bus.StreamAlerts,
		"OBJ_" + bus.ObjectExports, "OBJ_" + bus.ObjectSnapshots, "KV_" + bus.KVQuota, "KV_" + bus.KVRateLimit} {
		out = append(out, provision(s)...)
	}
	return out
}

// provision is the create and the update of stream s.
func provision(s string) []string {
	return []string{"$JS.API.STREAM.UPDATE." + s, "$JS.API.STREAM.CREATE." + s}
}

// durable is a stage's own durable pull consumer on stream: create or
// update it, pull, ack.
func durable(stream, name string) []string {
	return []string{"$JS.API.CONSUMER.CREATE." + stream + "." + name + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + "." + name, "$JS.ACK." + stream + "." + name + ".>"}
}

// kv is the writes and direct reads of a key-value bucket.
func kv(bucket string) []string {
	return []string{"$KV." + bucket + ".>", "$JS.API.DIRECT.GET.KV_" + bucket + ".>"}
}

// objectRead is what reading, replacing and deleting objects of a store
// needs beside its $O subjects: metadata by direct get, chunks through an
// ordered consumer and its flow control, the purge of replaced chunks.
func objectRead(bucket string) []string {
	s := "OBJ_" + bucket
	return []string{"$JS.API.DIRECT.GET." + s + ".>", "$JS.API.STREAM.PURGE." + s,
		"$JS.API.CONSUMER.CREATE." + s + ".>", "$JS.API.CONSUMER.DELETE." + s + ".>", "$JS.FC." + s + ".>"}
}

// objectReadOnly is what reading objects of a store needs, and nothing
// that changes it: metadata by direct get, chunks through an ordered
// consumer and its flow control.
func objectReadOnly(bucket string) []string {
	s := "OBJ_" + bucket
	return []string{"$JS.API.DIRECT.GET." + s + ".>", "$JS.API.CONSUMER.CREATE." + s + ".>",
		"$JS.API.CONSUMER.DELETE." + s + ".>", "$JS.FC." + s + ".>"}
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
