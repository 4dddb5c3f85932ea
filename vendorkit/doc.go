// Package vendorkit is what an LMS vendor needs to keep its own copy of the
// tenants skolebuss delivers to it: it reads the vendor's stream
// (VENDOR_<vendor>, subjects vendor.<vendor>.<tenant>.>), decodes each
// message into a typed Event, applies the events to a Store the vendor
// implements (SQLite, Postgres, its LMS's own database), checks the store
// against every export.completed, asks skolebuss for a resync of a tenant
// whose copy differs, and resumes where it stopped after a crash.
//
// A vendor connects with Connect (its NATS user, the inbox prefix its user
// may receive on, unlimited reconnects), implements Store, and runs a Kit:
//
//	nc, _ := vendorkit.Connect(url, "acme", nats.UserInfo("vendor-acme", password))
//	kit, _ := vendorkit.New(nc, store, vendorkit.Config{Vendor: "acme"})
//	err := kit.Run(ctx)
//
// # Order and exactly-once application
//
// The Store keeps, in the same transaction as the records, the stream
// sequence of the last event it applied (Store.Position). That position is the
// kit's only durable state: the events are applied strictly in stream order,
// each exactly once, whatever happens to the connection, the NATS server or
// the vendor's process.
//
// The kit reads with a durable pull consumer (acknowledgement AckAll, at most
// Config.MaxAckPending unacknowledged). Each time it starts reading (at
// start, and after anything unexpected) it reads the store's position P and
// makes a new durable consumer that delivers from P+1, then deletes the one
// before. (It takes three names in turn, Config.Consumer-0 to -2, because
// nats-server can fail to create a durable consumer just deleted under the
// same name.)
// A new consumer numbers its deliveries 1, 2, 3, ... (the consumer sequence
// of each message's metadata), and delivers first deliveries in stream order.
// So while the consumer sequences the kit sees are exactly 1, 2, 3, ... and
// every stream sequence is above the last one seen, the kit has seen every
// message the server sent, in stream order, and nothing earlier can follow.
// The first message that breaks this (a consumer sequence that skips or goes
// back: messages lost on a dropped connection or a server that restarted; a
// redelivery of a message not yet applied), a missing heartbeat, a
// reconnection, or an error of the store ends the reading: the messages
// already accepted in order are applied, the rest are dropped unapplied, and
// the kit starts reading again from the store's position. A message at or
// below the position (a redelivery of what is applied) is acknowledged and
// skipped. Nothing is ever applied after a later event.
//
// Events are applied in batches (Config.BatchSize, or what has arrived),
// each batch one Store.Apply: one transaction for the changes and the new
// position. The last message of a batch is acknowledged after Apply returns,
// which acknowledges the batch.
//
// # Checks and resyncs
//
// An export.completed carries the tenant's counts per entity and the
// checksum of the state after the export, as the vendor must hold it. The
// kit applies the events before it, then compares Store.Summary of the tenant
// with it, then applies the export.completed (which moves the position past
// it): a crash in between checks it again. On a difference the kit asks for a
// resync on vendorreq.<vendor>.resync.<tenant> (RequestResync; asked again
// every Config.ResyncRetry until skolebuss accepts it). A resync arrives as an
// export.started with Resync set, at which the store discards everything of
// the tenant, then created events of the tenant's whole state, then an
// export.completed checked as any other. A tenant.unlinked means the tenant
// no longer flows to the vendor: the store drops it. A vendor away for longer
// than its stream keeps events (30 days) finds the events after its position
// gone: it reads from the first one left, and the next export.completed of
// each tenant shows the difference and brings a resync.
//
// # The checksum
//
// The checksum of a tenant is the sum, modulo 2^64, over the records held, of
// RecordMix(entity, key, object), where object is the exact bytes of the
// record's object in the last created or updated event. Each Change carries
// its Mix, so a store keeps it beside the record and sums it (Checksum).
package vendorkit
