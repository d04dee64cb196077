import Foundation
import Testing
@testable import Tollgate
import TollgateIO

/// The SQLite wrapper: types round-trip, errors name the file and carry SQLite's message, transactions commit or
/// roll back, and the state database is created with the modes and journal it promises.
@Suite struct SQLiteDatabaseTests {
    @Test func everyTypeRoundTripsThroughAPreparedStatement() throws {
        let dir = try makeTemporaryDirectory()
        let db = try SQLiteDatabase(path: dir + "/t.db", mode: .readWriteCreate(fileMode: 0o600))
        try db.exec("CREATE TABLE t (i INTEGER, r REAL, s TEXT, n TEXT)")
        let insert = try db.prepare("INSERT INTO t VALUES (?, ?, ?, ?)")
        try insert.bind([.integer(Int64.max), .real(1.5), .text("héllo\u{0}world"), .null])
        try insert.run()
        try insert.bind([.integer(-1), .real(-0.25), .text(""), .text("x")])
        try insert.run()
        #expect(db.changes == 1)
        let select = try db.prepare("SELECT i, r, s, n FROM t ORDER BY i DESC")
        #expect(try select.step())
        #expect(select.int64(0) == Int64.max)
        #expect(select.double(1) == 1.5)
        #expect(select.text(2) == "héllo\u{0}world")
        #expect(select.isNull(3) && select.text(3) == nil && select.int64(3) == nil)
        #expect(select.value(3) == .null)
        #expect(try select.step())
        #expect(select.value(0) == .integer(-1) && select.value(1) == .real(-0.25))
        #expect(select.text(2) == "" && !select.isNull(2))
        #expect(select.value(3) == .text("x"))
        #expect(try select.step() == false)
        #expect(select.columnCount == 4)
    }

    @Test func errorsNameTheFileAndCarrySQLitesMessage() throws {
        let dir = try makeTemporaryDirectory()
        let missing = dir + "/none/x.db"
        let openError = #expect(throws: SQLiteError.self) { try SQLiteDatabase(path: missing, mode: .readWrite) }
        #expect(openError?.path == missing)
        #expect(openError?.description.contains(missing) == true)
        #expect(openError?.reason == "cantopen")

        let db = try SQLiteDatabase(path: dir + "/e.db", mode: .readWriteCreate(fileMode: 0o600))
        let syntax = #expect(throws: SQLiteError.self) { try db.exec("CREATE TABLEX t") }
        #expect(syntax?.message.contains("syntax error") == true)
        #expect(syntax?.description.contains(dir + "/e.db") == true)
        try db.exec("CREATE TABLE u (k TEXT PRIMARY KEY)")
        let insert = try db.prepare("INSERT INTO u VALUES (?)")
        try insert.bind(1, .text("a"))
        try insert.run()
        try insert.bind(1, .text("a"))
        let constraint = #expect(throws: SQLiteError.self) { try insert.run() }
        #expect(constraint?.message.contains("UNIQUE") == true)
        db.close()
        #expect(throws: SQLiteError.self) { try db.exec("SELECT 1") }
    }

    @Test func aTransactionCommitsOnReturnAndRollsBackOnThrow() throws {
        let dir = try makeTemporaryDirectory()
        let db = try SQLiteDatabase(path: dir + "/x.db", mode: .readWriteCreate(fileMode: 0o600))
        try db.exec("CREATE TABLE t (v INTEGER NOT NULL)")
        let insert = try db.prepare("INSERT INTO t VALUES (?)")
        let n = try db.transaction { () throws(SQLiteError) -> Int in
            for v in 1...3 {
                try insert.bind(1, .integer(Int64(v)))
                try insert.run()
            }
            return 3
        }
        #expect(n == 3)
        #expect(throws: SQLiteError.self) {
            try db.transaction { () throws(SQLiteError) in
                try insert.bind(1, .integer(4))
                try insert.run()
                try insert.bind(1, .null)   // NOT NULL: the whole transaction goes
                try insert.run()
            }
        }
        let count = try db.prepare("SELECT count(*), sum(v) FROM t")
        #expect(try count.step())
        #expect(count.int64(0) == 3 && count.int64(1) == 6)
    }

    @Test func theStateDatabaseIsCreatedPrivateInWALMode() throws {
        let dir = try makeTemporaryDirectory()
        let path = StateDatabase.path(in: dir + "/state")
        let db = try StateDatabase.openForWriting(path)
        var info = stat()
        #expect(stat(dir + "/state", &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let mode = try db.prepare("PRAGMA journal_mode")
        #expect(try mode.step())
        #expect(mode.text(0) == "wal")
        // An unfinished statement keeps its transaction open (nothing would commit): finish it.
        mode.reset()
        try db.exec("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (7)")
        // A reader sees the committed rows while the writer stays open.
        let reader = try StateDatabase.openForReading(path)
        let read = try reader.prepare("SELECT v FROM t")
        #expect(try read.step())
        #expect(read.int64(0) == 7)
        #expect(throws: SQLiteError.self) { try reader.exec("INSERT INTO t VALUES (8)") }
        let missing = #expect(throws: SQLiteError.self) { try StateDatabase.openForReading(dir + "/nope.db") }
        #expect(missing?.description.contains(dir + "/nope.db") == true)
    }

    @Test func theDefaultStateDirectoryIsBesideTheUsersFile() {
        #expect(StateDatabase.directory(configured: "/var/lib/tollgate", usersPath: "/etc/x/users") == "/var/lib/tollgate")
        #expect(StateDatabase.directory(configured: nil, usersPath: "/etc/x/users") == "/etc/x/state")
        #expect(StateDatabase.directory(configured: nil, usersPath: "users.htpasswd") == "state")
        #expect(StateDatabase.directory(configured: nil, usersPath: nil) == "state")
        #expect(StateDatabase.directory(configured: nil, usersPath: "/users") == "/state")
        #expect(StateDatabase.path(in: "state") == "state/tollgate.db")
    }

    @Test func durationsAreWholeUnitsOnly() {
        #expect(DurationText.seconds("90d") == Int64(90 * 86_400))
        #expect(DurationText.seconds("2w") == Int64(14 * 86_400))
        #expect(DurationText.seconds("36h") == Int64(36 * 3_600))
        #expect(DurationText.seconds("30m") == 1_800)
        #expect(DurationText.seconds("45s") == 45)
        for bad in ["", "d", "0d", "-1d", "1.5d", "10", "10y", "+3d", "99999999999999999w"] {
            #expect(DurationText.seconds(bad) == nil, "\(bad)")
        }
    }
}
