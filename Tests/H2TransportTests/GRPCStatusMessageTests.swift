import XCTest

@testable import H2Transport

final class GRPCStatusMessageTests: XCTestCase {
    func testEncodingEscapesPercentAndBytesOutsidePrintableASCII() {
        let table: [(String, String)] = [
            ("", ""),
            ("model 'simple' not found", "model 'simple' not found"),
            (" !\"#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", " !\"#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"),
            ("100%", "100%25"),
            ("a\nb", "a%0Ab"),
            ("\t", "%09"),
            ("\u{7F}", "%7F"),
            ("\u{0}", "%00"),
            ("é", "%C3%A9"),
            ("日本", "%E6%97%A5%E6%9C%AC"),
            ("🚀", "%F0%9F%9A%80"),
        ]
        for (message, wire) in table {
            XCTAssertEqual(GRPCStatusMessage.encode(message), wire, message)
        }
    }

    func testDecodingIsLenientAboutBrokenSequences() {
        let table: [(String, String)] = [
            ("plain text", "plain text"),
            ("%25", "%"),
            ("%C3%A9", "é"),
            ("%c3%a9", "é"),
            ("%E6%97%A5", "日"),
            ("%", "%"),
            ("%4", "%4"),
            ("%zz", "%zz"),
            ("100%", "100%"),
            ("%%41", "%A"),
            ("%4%41", "%4A"),
            ("%FF", "\u{FFFD}"),  // not UTF-8: replacement character, message kept
            ("%E6%97", "\u{FFFD}"),
            ("a%20b", "a b"),
        ]
        for (wire, message) in table {
            XCTAssertEqual(GRPCStatusMessage.decode(wire), message, wire)
        }
    }

    func testEveryMessageRoundTrips() {
        let messages = ["", "%", "%%", "%41", "über 100% sicher\r\n", String(decoding: (0...0x7F).map { UInt8($0) }, as: UTF8.self), "日本語 🚀"]
        for message in messages {
            let wire = GRPCStatusMessage.encode(message)
            XCTAssertTrue(wire.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, wire)
            XCTAssertEqual(GRPCStatusMessage.decode(wire), message)
        }
    }
}
