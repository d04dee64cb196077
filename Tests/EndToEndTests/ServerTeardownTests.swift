import Testing
@testable import Tollgate
import TollgateIO

/// A stopped server lets go of everything it built: its workers, their event loops, TLS contexts and OpenSSL
/// library contexts. One server runs per `tollgate serve`, but a process that starts many (this test run, an
/// embedding) kept every stopped one alive: the first worker's loop held a periodic timer whose body held every
/// worker, each of which holds its loop. Each OpenSSL library context takes two thread keys, and a long test run
/// ran out of them (1,024), failing handshake set-up with "malloc failure".
@Suite struct ServerTeardownTests {
    @Test(arguments: [1, 2]) func aStoppedServerFreesItsWorkersLoopsAndTLSContexts(workers: Int) throws {
        weak var server: Server?
        var heldWorkers: [() -> AnyObject?] = []
        try withProxyAndFake(configure: { $0.workers = workers }) { proxy, _ in
            server = proxy.server
            for worker in proxy.server.workers {
                weak var w = worker, loop = worker.loop, tls = worker.tls, library = worker.tls?.library
                #expect(tls != nil && library != nil)
                heldWorkers += [{ w }, { loop }, { tls }, { library }]
            }
            // Traffic first, so connections, pooled upstream connections and sessions existed and were closed.
            for _ in 0..<workers * 4 {
                let client = try proxy.tls()
                try client.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try client.readResponse().status == 200)
                client.close()
            }
            let kept = try proxy.tls()
            try kept.send("GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(try kept.readResponse().status == 200)
            // Left open: the shutdown closes it.
        }
        // The harness waits for the stop on a dispatch thread whose closure holds the server until a moment after
        // it signals: wait for that to be let go of too.
        _ = waitUntil { server == nil && heldWorkers.allSatisfy { $0() == nil } }
        #expect(server == nil, "the server is still alive")
        #expect(heldWorkers.count == workers * 4)
        for (i, held) in heldWorkers.enumerated() {
            #expect(held() == nil, "worker \(i / 4): its \(["worker", "loop", "TLS context", "library context"][i % 4]) is still alive")
        }
    }
}
