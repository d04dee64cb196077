import Testing
@testable import Tollgate

/// A client connection's lifecycle without sockets: events at explicit times, and the phases, deadlines and actions
/// they lead to.
@Suite struct ProxyConnectionLifecycleTests {
    static let second: UInt64 = 1_000_000_000
    /// Head 10 s, keep-alive 75 s, body 60 s, send 30 s.
    static let timeouts = ConnectionLifecycle.Timeouts(head: 10 * second, keepAliveIdle: 75 * second,
                                                       clientBodyIdle: 60 * second, clientSend: 30 * second)
    let s = ProxyConnectionLifecycleTests.second

    private func plain(at now: UInt64 = 1_000) -> ConnectionLifecycle {
        ConnectionLifecycle(proxyHeader: false, tls: false, timeouts: Self.timeouts, now: now)
    }

    /// A plain connection that served one request (done, nothing unread) kept alive at `at`.
    private func keptAlive(at: UInt64) -> ConnectionLifecycle {
        var life = plain()
        life.exchangeStarted()
        let next = life.exchangeFinished(now: at, keepAlive: true, requestDone: true, unreadInput: false,
                                         draining: false)
        #expect(next == .keepAlive)
        return life
    }

    @Test func theHeadTimerRunsFromAcceptAndClosesAsHeadTimeout() {
        var life = plain(at: 1_000)
        #expect(life.phase == .waitingHead && life.timer == .head)
        #expect(life.deadline == 1_000 + 10 * s)
        var fired = life.deadlineReached(now: 1_000 + 10 * s - 1)
        #expect(fired == .proceed)
        fired = life.deadlineReached(now: 1_000 + 10 * s)
        #expect(fired == .close(.headTimeout))
        var closed = life.close()
        #expect(closed)
        #expect(life.isClosed && life.deadline == 0)
        closed = life.close()
        #expect(!closed, "a second close is not a close")
    }

    @Test func theHandshakeAndThePROXYHeaderRunUnderTheHeadTimer() {
        var tls = ConnectionLifecycle(proxyHeader: false, tls: true, timeouts: Self.timeouts, now: 0)
        #expect(tls.phase == .handshake && tls.deadline == 10 * s)
        tls.handshakeFinished()
        #expect(tls.phase == .waitingHead && tls.timer == .head && tls.deadline == 10 * s)
        let fired = tls.deadlineReached(now: 10 * s)
        #expect(fired == .close(.headTimeout))

        var proxied = ConnectionLifecycle(proxyHeader: true, tls: true, timeouts: Self.timeouts, now: 0)
        #expect(proxied.phase == .proxyHeader)
        proxied.proxyHeaderRead()
        #expect(proxied.phase == .handshake && proxied.deadline == 10 * s)

        var proxiedPlain = ConnectionLifecycle(proxyHeader: true, tls: false, timeouts: Self.timeouts, now: 0)
        proxiedPlain.proxyHeaderRead()
        #expect(proxiedPlain.phase == .waitingHead)
    }

    @Test func anExchangeStopsTheTimerAndKeepAliveArmsTheIdleTimer() {
        var life = plain()
        life.exchangeStarted()
        #expect(life.phase == .exchange && life.timer == .none && life.deadline == 0 && life.requestsServed == 1)
        let next = life.exchangeFinished(now: 5 * s, keepAlive: true, requestDone: true, unreadInput: false,
                                         draining: false)
        #expect(next == .keepAlive)
        #expect(life.phase == .waitingHead && life.timer == .keepAlive && !life.closesAfterFlush)
        #expect(life.deadline == 5 * s + 75 * s)
        var fired = life.deadlineReached(now: 80 * s - 1)
        #expect(fired == .proceed)
        fired = life.deadlineReached(now: 80 * s)
        #expect(fired == .close(.keepAliveTimeout))
    }

    @Test func theNextHeadRearmsTheHeadTimerOnceFromItsFirstByte() {
        var life = keptAlive(at: 5 * s)
        life.headArriving(now: 20 * s)
        #expect(life.timer == .head && life.deadline == 30 * s)
        // More bytes of the same head do not move the deadline.
        life.headArriving(now: 25 * s)
        #expect(life.deadline == 30 * s)
        let fired = life.deadlineReached(now: 30 * s)
        #expect(fired == .close(.headTimeout))
        life.exchangeStarted()
        #expect(life.requestsServed == 2 && life.deadline == 0)
    }

    @Test func aBodyIsTimedBetweenReadsAndNeverPastItsTotalDeadline() {
        var life = plain()
        life.exchangeStarted()
        life.bodyExpected(now: 2 * s)
        #expect(life.timer == .body && life.deadline == 62 * s)
        life.bodyMoved(now: 40 * s, done: false)
        #expect(life.timer == .body && life.deadline == 100 * s)
        var fired = life.deadlineReached(now: 100 * s)
        #expect(fired == .close(.bodyTimeout))

        // A body read whole: the total deadline wins when it is earlier than the between-reads one.
        life.bodyExpected(now: 100 * s, totalDeadline: 130 * s)
        #expect(life.deadline == 130 * s)
        life.bodyExpected(now: 100 * s, totalDeadline: 500 * s)
        #expect(life.deadline == 160 * s)
        life.bodyMoved(now: 110 * s, done: true)
        #expect(life.timer == .none && life.deadline == 0)
        fired = life.deadlineReached(now: 1_000 * s)
        #expect(fired == .proceed)
    }

    @Test func aTimerOfNoneOnlyClearsItsDeadline() {
        var life = plain()
        life.exchangeStarted()
        // A body deadline left armed while the timer says none (as moving a body leaves it) is cleared, not fired.
        life.bodyExpected(now: 0)
        life.stopTimer()
        life.bodyMoved(now: 1 * s, done: false)
        #expect(life.timer == .none && life.deadline == 61 * s)
        let fired = life.deadlineReached(now: 61 * s)
        #expect(fired == .proceed)
        #expect(life.deadline == 0 && !life.isClosed)
    }

    @Test func theSendDeadlineWinsWhenEarlierAndFiresFirst() {
        // Send deadline earlier than the keep-alive timer's: it is the deadline, and closes as send-timeout.
        var life = keptAlive(at: 0)
        life.outputBlocked(now: 10 * s)
        #expect(life.deadline == 40 * s)
        // Blocked again later with nothing taken meanwhile: the send deadline stays.
        life.outputBlocked(now: 20 * s)
        #expect(life.deadline == 40 * s)
        var fired = life.deadlineReached(now: 40 * s)
        #expect(fired == .close(.sendTimeout))

        // Later than the head timer's: the head timer is the deadline and fires as head-timeout.
        var early = plain(at: 0)
        early.outputBlocked(now: 5 * s)
        #expect(early.deadline == 10 * s)
        fired = early.deadlineReached(now: 10 * s)
        #expect(fired == .close(.headTimeout))
        // Both passed: the send deadline is checked first.
        fired = early.deadlineReached(now: 35 * s)
        #expect(fired == .close(.sendTimeout))

        // With no timer armed, the send deadline alone.
        var busy = plain(at: 0)
        busy.exchangeStarted()
        busy.outputBlocked(now: 1 * s)
        #expect(busy.deadline == 31 * s)
        let end = busy.outputDrained(now: 2 * s, exchangeOpen: true)
        #expect(end == .proceed)
        #expect(busy.deadline == 0)
    }

    @Test func aClosingConnectionLingersAfterItsLastByteUntilTheLingerDeadline() {
        var life = plain()
        life.exchangeStarted()
        life.bodyExpected(now: 0)
        // The response ended before the body did: close, and linger since the client may still be sending.
        let next = life.exchangeFinished(now: 3 * s, keepAlive: true, requestDone: false, unreadInput: false,
                                         draining: false)
        #expect(next == .closeAfterFlush && life.closesAfterFlush && life.lingerNeeded)
        life.outputBlocked(now: 3 * s)
        #expect(life.deadline == 33 * s)
        let end = life.outputDrained(now: 4 * s, exchangeOpen: false)
        #expect(end == .linger)
        #expect(life.phase == .lingering && life.timer == .linger)
        #expect(life.deadline == 6 * s, "the linger's 2 s, the send deadline cleared")
        var fired = life.deadlineReached(now: 6 * s - 1)
        #expect(fired == .proceed)
        fired = life.deadlineReached(now: 6 * s)
        #expect(fired == .close(.completed))
    }

    @Test func nothingMoreToComeMeansNoLinger() {
        var life = plain()
        life.exchangeStarted()
        let next = life.exchangeFinished(now: s, keepAlive: false, requestDone: true, unreadInput: false,
                                         draining: false)
        #expect(next == .closeAfterFlush && !life.lingerNeeded)
        // Output drained while the exchange is still open: not the end yet.
        var end = life.outputDrained(now: s, exchangeOpen: true)
        #expect(end == .proceed)
        end = life.outputDrained(now: s, exchangeOpen: false)
        #expect(end == .finish)
        #expect(life.phase == .waitingHead)

        // Pipelined bytes unread: they may be followed by more, so it lingers.
        var pipelined = plain()
        pipelined.exchangeStarted()
        _ = pipelined.exchangeFinished(now: s, keepAlive: false, requestDone: true, unreadInput: true, draining: false)
        #expect(pipelined.lingerNeeded)
        end = pipelined.outputDrained(now: s, exchangeOpen: false)
        #expect(end == .linger)
    }

    @Test func aKeptAliveConnectionDoesNotEndWhenItsOutputDrains() {
        var life = keptAlive(at: 0)
        let end = life.outputDrained(now: s, exchangeOpen: false)
        #expect(end == .proceed)
        #expect(life.phase == .waitingHead && life.timer == .keepAlive)
    }

    @Test func drainingClosesAfterTheExchangeAndIdleConnectionsAtOnce() {
        var life = plain()
        life.exchangeStarted()
        #expect(life.draining(unreadInput: false, outputPending: false) == .proceed)
        let next = life.exchangeFinished(now: s, keepAlive: true, requestDone: true, unreadInput: false,
                                         draining: true)
        #expect(next == .closeAfterFlush && !life.lingerNeeded)
        let end = life.outputDrained(now: s, exchangeOpen: false)
        #expect(end == .finish)

        let idle = keptAlive(at: 0)
        #expect(idle.draining(unreadInput: false, outputPending: false) == .close(.draining))
        #expect(idle.draining(unreadInput: true, outputPending: false) == .proceed, "a head is arriving")
        #expect(idle.draining(unreadInput: false, outputPending: true) == .proceed, "a response is being written")
        let handshaking = ConnectionLifecycle(proxyHeader: false, tls: true, timeouts: Self.timeouts, now: 0)
        #expect(handshaking.draining(unreadInput: true, outputPending: false) == .close(.draining))
        var closing = plain()
        closing.refused()
        #expect(closing.draining(unreadInput: false, outputPending: false) == .proceed)
    }

    @Test func refusalsAndTruncatedResponsesCloseAfterFlush() {
        var refused = plain()
        refused.refused()
        #expect(refused.closesAfterFlush && refused.lingerNeeded)
        var end = refused.outputDrained(now: s, exchangeOpen: false)
        #expect(end == .linger)

        var truncated = plain()
        truncated.exchangeStarted()
        truncated.exchangeTruncated(requestDone: true)
        #expect(truncated.phase == .waitingHead && truncated.closesAfterFlush && !truncated.lingerNeeded)
        end = truncated.outputDrained(now: s, exchangeOpen: false)
        #expect(end == .finish)
    }

    @Test func newTimeoutsApplyToTheNextTimerArmed() {
        var life = plain(at: 0)
        life.timeouts.keepAliveIdle = 5 * s
        #expect(life.deadline == 10 * s, "an armed deadline stays")
        life.exchangeStarted()
        _ = life.exchangeFinished(now: s, keepAlive: true, requestDone: true, unreadInput: false, draining: false)
        #expect(life.deadline == 6 * s)
    }

    /// A client reading slowly is not one accepting nothing: every write that moves bytes restarts the send deadline.
    @Test func theSendDeadlineRunsFromTheLastWriteThatMovedBytes() {
        var life = plain(at: 0)
        life.exchangeStarted()
        life.outputBlocked(now: 1 * s)
        #expect(life.deadline == 31 * s)
        life.outputBlocked(now: 20 * s, progressed: true)
        #expect(life.deadline == 50 * s)
        life.outputBlocked(now: 45 * s)
        #expect(life.deadline == 50 * s, "no progress: the deadline stays")
        let early = life.deadlineReached(now: 49 * s)
        #expect(early == .proceed)
        let fired = life.deadlineReached(now: 50 * s)
        #expect(fired == .close(.sendTimeout))
    }

    /// Keep-alive is for an idle connection: while the last response is still being written, no keep-alive timer
    /// can cut it short; it starts once the output drains.
    @Test func theKeepAliveTimerStartsWhenTheLastResponseIsOut() {
        var life = plain(at: 0)
        life.exchangeStarted()
        let next = life.exchangeFinished(now: 5 * s, keepAlive: true, requestDone: true, unreadInput: false,
                                         draining: false, outputPending: true)
        #expect(next == .keepAlive)
        #expect(life.timer == .none && life.timerDeadline == 0)
        life.outputBlocked(now: 5 * s)
        #expect(life.deadline == 35 * s, "only the send deadline while the response is written")
        let still = life.deadlineReached(now: 5 * s + 4 * s)
        #expect(still == .proceed)
        let drained = life.outputDrained(now: 20 * s, exchangeOpen: false)
        #expect(drained == .proceed)
        #expect(life.timer == .keepAlive && life.deadline == 20 * s + 75 * s)
        // A pipelined head that came while the response was written gets the head timer.
        var pipelined = plain(at: 0)
        pipelined.exchangeStarted()
        _ = pipelined.exchangeFinished(now: 5 * s, keepAlive: true, requestDone: true, unreadInput: true,
                                       draining: false, outputPending: true)
        pipelined.headArriving(now: 6 * s)
        #expect(pipelined.timer == .head && pipelined.timerDeadline == 6 * s + 10 * s)
        _ = pipelined.outputDrained(now: 7 * s, exchangeOpen: false)
        #expect(pipelined.timer == .head, "the head timer keeps running")
    }
}
