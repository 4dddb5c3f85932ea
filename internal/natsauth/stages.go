package natsauth

// StageUsers are the users of the pipeline's own processes, as the
// distributed deployment (deploy/nats) runs them, rendered from Identities:
// one per stage (requester, fetcher, publisher, fanout) with only the
// JetStream calls and subjects that stage makes, the operator with every
// right in the account, and provision, which creates and updates the
// streams and stores (`skolebuss provision`). Each password is read by the
// server from the variable <USER>_PASSWORD (REQUESTER_PASSWORD, ...).
// vendors are the configured vendors' names: the fan-out's and provision's
// rights name their streams one by one.
//
// Why the rights look the way they do (deploy/nats_test.go runs the real
// stages as these users against a server built from the written file, and
// TestPermissionsTable tries every call of every identity on every stream):
//
//   - "<StageInboxPrefix>.>" (subscribe): every JetStream API call, every
//     JetStream publish (the stream's ack) and every pull request is a
//     request whose answer comes back on the client's inbox; each stage
//     connects with its own prefix (bus.Config.InboxPrefix), so none reads
//     another's answers, and none may subscribe to "_INBOX.>".
//   - STREAM.INFO of what it uses: a stage checks at start that its streams
//     and stores exist (they are made by provision, not by the stage) and
//     looks its stores and buckets up.
//   - CONSUMER.CREATE, MSG.NEXT and ACK of the stage's own durable pull
//     consumer: made or updated at start, pulled, acked.
//   - "$KV.<bucket>.>" plus DIRECT.GET of KV_<bucket>: key-value writes are
//     publishes on $KV.<bucket>.<key>; reads are direct gets.
//   - "$O.<bucket>.>" plus DIRECT.GET, an ordered consumer and flow control
//     on OBJ_<bucket>: an object store writes chunks and metadata as
//     publishes, reads metadata by direct get and chunks through an
//     ordered consumer; a store the stage writes also its purge, which
//     removes the chunks of an object deleted or replaced.
func StageUsers(vendors []string) []User {
	var out []User
	for _, id := range Identities(vendors)[:len(pipeline(nil))] {
		out = append(out, id.User())
	}
	return out
}
