@testable import Tollgate
import Testing

/// `UpstreamPeers`: one interface for the single upstream and for a backend set; what differs is policy.
@Suite("Upstreams: UpstreamPeers (get/report/free)")
struct UpstreamsPeersTests {
    static func set(_ count: Int) -> BackendSet {
        BackendSet(backends: (0..<count).map { (UpstreamAddress(parsing: "http://127.0.0.1:\(22_000 + $0)")!, 1) },
                   queueLimit: 4, queueTimeoutMillis: 1_000, failuresToEject: 1)
    }

    static func noWaiter() -> UpstreamPeers.Waiter {
        UpstreamPeers.Waiter(nowMillis: 0, onGranted: { _ in }, onExpired: {}, onUnservable: { _ in })
    }

    @Test func theSingleUpstreamIsBackendZeroAtOnceAndBuildsNoWaiter() {
        let peers = UpstreamPeers.single
        var asked = false
        let choice = peers.get(model: "llama3", counted: true, excluded: 0) {
            asked = true
            return Self.noWaiter()
        }
        guard case .acquired(let lease) = choice else {
            Issue.record("expected a lease, got \(choice)")
            return
        }
        #expect(lease.backend == 0)
        #expect(!asked)
        // Reporting and freeing change nothing; nothing is kept, buffered, merged or logged.
        peers.report(0, .failed(detail: "x"))
        peers.free(lease)
        #expect(peers.cancel(ticket: 1))
        #expect(!peers.keepsRequests)
        #expect(!peers.readsBodyWhole(route: .readOnly))
        #expect(!peers.mergesModelLists)
        #expect(peers.modelListing() == nil)
        #expect(peers.healthy == nil)
        #expect(peers.logName(0) == nil)
        #expect(peers.metricsText().isEmpty)
    }

    @Test func theSingleUpstreamTriedOnceHasNoOtherPeer() {
        guard case .unavailable = UpstreamPeers.single.get(model: nil, counted: false, excluded: 1, waiter: Self.noWaiter) else {
            Issue.record("expected .unavailable")
            return
        }
    }

    @Test func aSetOfSeveralKeepsRequestsAndReadsBodiesWholeButBlobs() {
        let peers = UpstreamPeers(backendSet: Self.set(2))
        #expect(peers.keepsRequests)
        #expect(peers.readsBodyWhole(route: .readOnly))
        #expect(!peers.readsBodyWhole(route: .blobs))
        #expect(peers.mergesModelLists)
        #expect(peers.healthy == true)
        #expect(peers.logName(1) == "127.0.0.1:22001")
    }

    @Test func aSetOfOneKeepsRequestsButStreamsBodiesAndListsNothingItself() {
        let peers = UpstreamPeers(backendSet: Self.set(1))
        #expect(peers.keepsRequests)
        #expect(!peers.readsBodyWhole(route: .readOnly))
        #expect(!peers.mergesModelLists)
    }

    @Test func reportsReachTheSetsHealth() {
        let set = Self.set(2)
        let peers = UpstreamPeers(backendSet: set)
        guard case .acquired(let lease) = peers.get(model: nil, counted: true, excluded: 0, waiter: Self.noWaiter) else {
            Issue.record("expected a lease")
            return
        }
        peers.report(lease.backend, .failed(detail: "refused"))
        #expect(set.snapshot[lease.backend].healthy == false)
        peers.report(lease.backend, .answered)
        #expect(set.snapshot[lease.backend].healthy == true)
        peers.free(lease)
        #expect(set.snapshot[lease.backend].inFlight == 0)
    }
}
