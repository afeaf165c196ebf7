import ConclaveCore

/// One stored audit record: its canonical body and its place in the hash chain.
public struct AuditRow: Sendable, Hashable {
    /// Position in the chain, from 1, without gaps.
    public var seq: Int64
    /// Record type (`request`, `denial`, `checkpoint`, …), for retention.
    public var type: String
    /// Seconds since 1970.
    public var time: Double
    /// The canonical JSON of the record; the hash covers exactly these bytes.
    public var body: String
    /// Hash of the previous record (the chain's genesis or a purge anchor for the first).
    public var prevHash: String
    /// SHA-256 over `prevHash`, a newline and `body`, lowercase hex.
    public var hash: String

    public init(seq: Int64, type: String, time: Double, body: String, prevHash: String, hash: String) {
        self.seq = seq
        self.type = type
        self.time = time
        self.body = body
        self.prevHash = prevHash
        self.hash = hash
    }
}

/// A signed statement about the chain, kept apart from it: a checkpoint ("record `seq` has hash
/// `hash`") or a purge summary ("records `fromSeq`…`seq`, ending in `hash`, were removed").
public struct AuditAnchor: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case checkpoint, purge }

    public var kind: Kind
    /// The last record the anchor covers.
    public var seq: Int64
    /// That record's hash.
    public var hash: String
    /// First purged record (purge only).
    public var fromSeq: Int64?
    /// Seconds since 1970.
    public var time: Double
    /// Ed25519 signature (base64) over ``signedText``.
    public var signature: String

    public init(kind: Kind, seq: Int64, hash: String, fromSeq: Int64? = nil, time: Double, signature: String = "") {
        self.kind = kind
        self.seq = seq
        self.hash = hash
        self.fromSeq = fromSeq
        self.time = time
        self.signature = signature
    }

    /// What the signature covers.
    public var signedText: String {
        "conclave-audit|\(kind.rawValue)|\(fromSeq.map(String.init) ?? "-")|\(seq)|\(hash)|\(Int64(time * 1000))"
    }
}

/// Stores the append-only audit chain and its anchors.
public protocol AuditStore: Sendable {
    /// In one transaction: reads the chain's head (last sequence number and hash; `(0, genesis)`
    /// or the latest purge anchor when empty) and appends the rows `make` builds from it.
    func appendAudit(_ make: @escaping @Sendable (_ lastSeq: Int64, _ lastHash: String) throws -> [AuditRow]) async throws
    /// Rows from `seq` on, in order.
    func auditRows(from seq: Int64, limit: Int) async throws -> [AuditRow]
    /// The newest row, if any.
    func lastAuditRow() async throws -> AuditRow?
    /// Every anchor, oldest first.
    func auditAnchors() async throws -> [AuditAnchor]
    /// Stores an anchor.
    func addAuditAnchor(_ anchor: AuditAnchor) async throws
    /// In one transaction: deletes the rows up to `anchor.seq` and stores the purge anchor.
    func purgeAudit(_ anchor: AuditAnchor) async throws
}

/// The hash before the first record.
public let auditGenesisHash = String(repeating: "0", count: 64)
