@testable import Gateway
import Foundation
import Logging
import XCTest

final class JSONLogHandlerTests: XCTestCase {
    private let noon = timespec(tv_sec: 1_796_299_200, tv_nsec: 7_000_000)  // 2026-12-03T12:00:00.007Z

    private func parse(_ line: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func testALineHasTheFixedFieldsThenTheMetadataAsFields() throws {
        let line = JSONLogFormat.line(
            level: .warning, message: "worker exited", label: "switchyard", source: "Gateway",
            metadata: ["worker": "simple-0", "status": .stringConvertible(9)], time: noon)
        XCTAssertEqual(
            line,
            #"{"time":"2026-12-03T12:00:00.007Z","level":"warning","logger":"switchyard","message":"worker exited","source":"Gateway","status":"9","worker":"simple-0"}"#)
        XCTAssertEqual(try parse(line)["status"] as? String, "9")
    }

    func testEveryStringIsEscapedSoAnyMessageParses() throws {
        let nasty = "quote \" backslash \\ newline \n tab \t bell \u{07} del \u{7F} emoji 🚂 ü"
        let line = JSONLogFormat.line(level: .info, message: nasty, label: "l", source: "s", metadata: [nasty: .string(nasty)], time: noon)
        XCTAssertFalse(line.contains("\n"), "one event, one line")
        let object = try parse(line)
        XCTAssertEqual(object["message"] as? String, nasty)
        XCTAssertEqual(object[nasty] as? String, nasty)
    }

    func testNestedMetadataBecomesJSONAndFixedNamesAreNotOverwritten() throws {
        let line = JSONLogFormat.line(
            level: .error, message: "m", label: "l", source: "s",
            metadata: ["models": .array(["simple", "repeat_int32"]), "peer": .dictionary(["port": "8443", "host": "::1"]), "source": "worker-stderr"],
            time: noon)
        let object = try parse(line)
        XCTAssertEqual(object["models"] as? [String], ["simple", "repeat_int32"])
        XCTAssertEqual(object["peer"] as? [String: String], ["port": "8443", "host": "::1"])
        XCTAssertEqual(object["source"] as? String, "s")
        XCTAssertEqual(object["metadata.source"] as? String, "worker-stderr")
    }

    func testTheWriterKeepsOrderAndDropsAndCountsWhatDoesNotFitWhileItIsBlocked() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]) }
        let writer = LogLineWriter(descriptor: fds[1], capacity: 4)
        // A line larger than the pipe's buffer: the writer thread blocks writing it.
        let big = String(repeating: "x", count: 200_000)
        writer.write(big)
        var poll = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(Glibc.poll(&poll, 1, 5000), 1, "the writer started writing")
        usleep(50_000)  // it has filled the pipe and waits in write(2)
        for index in 0..<10 { writer.write("line \(index)") }
        XCTAssertEqual(writer.droppedLines, 6, "4 wait, 6 do not fit")

        // Shutdown writes what waits (the rest of the big line, then the 4) while this thread
        // reads the pipe; then the write end closes and the read sees the end.
        var output = Data()
        let done = DispatchSemaphore(value: 0)
        let writeEnd = fds[1]
        DispatchQueue.global().async {
            writer.shutdown()
            close(writeEnd)
            done.signal()
        }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(fds[0], &chunk, chunk.count)
            if count <= 0 { break }
            output.append(contentsOf: chunk[0..<count])
        }
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, [big, "line 0", "line 1", "line 2", "line 3"])
        writer.write("after shutdown")
        XCTAssertEqual(writer.droppedLines, 6, "lines after shutdown are refused, not counted as falling behind")
    }
}
