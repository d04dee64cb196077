import Testing
import TollgateIO

/// The command runner doctor asks `ufw`, `nft` and `timedatectl` through.
@Suite struct DoctorChildProcessTests {
    @Test func collectsOutputAndExitStatus() throws {
        let out = try #require(ChildProcess.run(["sh", "-c", "echo out; echo err >&2; exit 3"]))
        #expect(out.status == 3)
        #expect(out.text == "out\nerr\n")
        // Untranslated output to parse.
        #expect(ChildProcess.run(["sh", "-c", "echo $LC_ALL"])?.text == "C\n")
    }

    @Test func aCommandThatIsNotInstalledIsNil() {
        #expect(ChildProcess.run(["tollgate-no-such-command-here"]) == nil)
        #expect(ChildProcess.run([]) == nil)
    }

    @Test func aCommandPastItsLimitIsKilled() throws {
        // Ends because of the kill, whatever the machine's speed: the limit is far below the command's own length.
        let out = try #require(ChildProcess.run(["sh", "-c", "echo started; exec sleep 600"], timeoutMillis: 200))
        #expect(out.status == -1)
        #expect(out.text == "started\n")
    }
}
