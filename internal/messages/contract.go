package messages

import "github.com/skolebuss/skolebuss/internal/snapshot"

// HeaderForce, set to ForceValue on an export job, asks for the export to be
// applied even if it would delete more than the configured share of the
// tenant's records: the fetcher sets FetchedExport.Force on the export it
// announces, which the publisher reads. Only a replay with force sets it
// (skolebuss replay --force). ExportJob has no field for it; a header keeps
// the job's schema unchanged.
const HeaderForce = "Skolebuss-Force"

// ForceValue is the value of HeaderForce that forces an export.
const ForceValue = "true"

// ChecksumPrefix names the algorithm of the state checksum that
// export.completed carries: the sum of XXH64 mixes of internal/snapshot.
const ChecksumPrefix = "xxh64sum:"

// FormatChecksum is the form of a state checksum in export.completed
// (Boundary.Checksum): ChecksumPrefix and 16 lower-case hex digits. The
// publisher writes it from the new snapshot; a vendor compares it with the
// checksum of the copy it applied the events to.
func FormatChecksum(c snapshot.Checksum) string { return ChecksumPrefix + c.String() }
