import Testing
import ToolProtocol

@Suite struct FrameDecoderTests {
    func frame(_ json: String) -> [UInt8] { Framing.encode(Array(json.utf8)) }

    @Test func frameSplitOverManyReadsIsReassembled() throws {
        let bytes = frame(#"{"jsonrpc":"2.0","id":1,"method":"daemon.status"}"#)
        var decoder = FrameDecoder()
        var frames: [[UInt8]] = []
        for byte in bytes {  // one byte per read, the worst split there is
            decoder.append([byte])
            while let payload = try decoder.next() { frames.append(Array(payload)) }
        }
        #expect(frames == [Array(bytes.dropFirst(4))])
        #expect(!decoder.hasPartialFrame)
    }

    @Test func manyFramesInOneReadAreAllReturnedInOrder() throws {
        var decoder = FrameDecoder()
        let payloads = (0..<50).map { #"{"n":\#($0)}"# }
        decoder.append(payloads.flatMap { frame($0) })
        var got: [String] = []
        while let payload = try decoder.next() { got.append(String(decoding: payload, as: UTF8.self)) }
        #expect(got == payloads)
        #expect(decoder.bufferedBytes == 0)
    }

    @Test func partialHeaderAndPayloadAreReportedAsPartial() throws {
        var decoder = FrameDecoder()
        decoder.append([0, 0])
        #expect(try decoder.next() == nil)
        #expect(decoder.hasPartialFrame)
        decoder.append([0, 5, 65])
        #expect(try decoder.next() == nil)
        decoder.append([66, 67, 68, 69])
        #expect(try decoder.next().map(Array.init) == Array("ABCDE".utf8))
    }

    @Test func zeroLengthIsRejected() {
        var decoder = FrameDecoder()
        decoder.append([0, 0, 0, 0])
        #expect(throws: FrameError.emptyFrame) { try decoder.next() }
    }

    @Test func oversizeLengthIsRejectedWithoutAllocating() {
        // Only the 4 header bytes are ever sent: a decoder that waited for (or reserved) 4 GiB would
        // return nil or crash here instead of throwing.
        var decoder = FrameDecoder(maxFrameBytes: 1024)
        decoder.append([0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: FrameError.frameTooLarge(length: 0xFFFF_FFFF, maximum: 1024)) { try decoder.next() }
        #expect(decoder.bufferedBytes == 4)
        var limit = FrameDecoder(maxFrameBytes: 1024)
        limit.append(Framing.encode([UInt8](repeating: 32, count: 1024)))
        #expect(throws: Never.self) { _ = try limit.next() }
    }

    @Test func errorMessageNamesTheLimit() {
        #expect(FrameError.frameTooLarge(length: 99, maximum: 16).description.contains("16 bytes"))
    }
}

@Suite struct RPCServerCodecTests {
    func decode(_ text: String) throws(RPCErrorResponse) -> RPCIncoming {
        try RPCServerCodec.decode(Array(text.utf8))
    }

    func errorCode(_ text: String) -> Int? {
        do {
            _ = try decode(text)
            return nil
        } catch {
            if case .failure(let e) = error.response.outcome { return e.code }
            return nil
        }
    }

    @Test func invalidUTF8IsAParseError() {
        #expect(errorCode(String(decoding: [0x7B, 0xFF, 0xFE, 0x7D], as: UTF8.self)) == RPCErrorCode.parseError)
        do {
            _ = try RPCServerCodec.decode([0x7B, 0x22, 0xC3, 0x28, 0x22, 0x7D])  // {"\xC3("} — broken UTF-8
            Issue.record("expected a parse error")
        } catch {
            #expect(error.response.id == .null)
            guard case .failure(let e) = error.response.outcome else { return }
            #expect(e.code == RPCErrorCode.parseError)
            #expect(e.message.contains("UTF-8"))
        }
    }

    @Test func invalidJSONIsAParseError() {
        #expect(errorCode(#"{"jsonrpc": "2.0", "method": "x""#) == RPCErrorCode.parseError)
        #expect(errorCode("nope") == RPCErrorCode.parseError)
    }

    @Test func nonObjectIsAnInvalidRequest() {
        #expect(errorCode("42") == RPCErrorCode.invalidRequest)
        #expect(errorCode(#""text""#) == RPCErrorCode.invalidRequest)
        #expect(errorCode("[]") == RPCErrorCode.invalidRequest)
    }

    @Test func wrongEnvelopeFieldsAreInvalidRequestsKeepingTheId() throws {
        guard case .single(.invalid(let r)) = try decode(#"{"jsonrpc":"1.0","id":7,"method":"x"}"#) else {
            Issue.record("expected invalid")
            return
        }
        #expect(r.id == 7)
        guard case .single(.invalid(let r2)) = try decode(#"{"jsonrpc":"2.0","id":"a","method":"x","params":3}"#) else {
            Issue.record("expected invalid")
            return
        }
        #expect(r2.id == "a")
        guard case .single(.invalid(let r3)) = try decode(#"{"jsonrpc":"2.0","id":{},"method":"x"}"#) else {
            Issue.record("expected invalid")
            return
        }
        #expect(r3.id == .null)
    }

    /// A number id comes back exactly as sent: beyond 64-bit integers it would come back in another form
    /// (1.8446744073709552e+19), so it is refused; a fraction and the 64-bit extremes are echoed.
    @Test func numberIdsAreEchoedExactlyOrRefused() throws {
        for big in ["18446744073709551616", "9223372036854775808", "-9223372036854775809", "1e30"] {
            guard case .single(.invalid(let r)) = try decode(#"{"jsonrpc":"2.0","id":\#(big),"method":"x"}"#),
                case .failure(let e) = r.outcome
            else {
                Issue.record("expected \(big) to be refused")
                continue
            }
            #expect(r.id == .null && e.code == RPCErrorCode.invalidRequest && e.message.contains("64-bit"), "\(big): \(e.message)")
        }
        for (text, id) in [("9223372036854775807", JSONValue.int(.max)), ("-9223372036854775808", .int(.min)), ("1.5", .double(1.5))] {
            #expect(try decode(#"{"jsonrpc":"2.0","id":\#(text),"method":"x"}"#) == .single(.request(RPCRequest(id: id, method: "x"))))
        }
    }

    @Test func batchWithMixedMembersKeepsEachMembersFate() throws {
        let text = #"""
            [{"jsonrpc":"2.0","id":1,"method":"daemon.status"},
             1,
             {"jsonrpc":"2.0","method":"note"},
             {"jsonrpc":"2.0","id":2},
             {"jsonrpc":"2.0","id":3,"method":"exec","params":{"argv":["true"]}}]
            """#
        guard case .batch(let members) = try decode(text) else {
            Issue.record("expected a batch")
            return
        }
        #expect(members.count == 5)
        #expect(members[0] == .request(RPCRequest(id: 1, method: "daemon.status")))
        guard case .invalid(let bad) = members[1], case .failure(let e) = bad.outcome else {
            Issue.record("member 1 must be invalid")
            return
        }
        #expect(e.code == RPCErrorCode.invalidRequest)
        #expect(members[2] == .request(RPCRequest(id: nil, method: "note")))
        guard case .invalid(let missing) = members[3] else {
            Issue.record("member 3 must be invalid")
            return
        }
        #expect(missing.id == 2)
        guard case .request(let exec) = members[4] else {
            Issue.record("member 4 must be a request")
            return
        }
        #expect(exec.params?["argv"] == ["true"])
    }

    @Test func notificationsGetNoResponse() throws {
        guard case .single(.request(let r)) = try decode(#"{"jsonrpc":"2.0","method":"daemon.status"}"#) else {
            Issue.record("expected a request")
            return
        }
        #expect(r.isNotification)
        #expect(RPCServerCodec.encode(responses: [], asBatch: true) == nil)
        #expect(RPCServerCodec.encode(responses: [], asBatch: false) == nil)
        // A null id is a request, not a notification.
        guard case .single(.request(let withNull)) = try decode(#"{"jsonrpc":"2.0","id":null,"method":"m"}"#) else {
            Issue.record("expected a request")
            return
        }
        #expect(!withNull.isNotification)
    }

    @Test func responsesRoundTrip() throws {
        let ok = RPCResponse(id: "x", outcome: .success(["a": 1]))
        let bad = RPCResponse(id: 5, outcome: .failure(.invalidParams(path: "/argv", "must not be empty")))
        let bytes = try #require(RPCServerCodec.encode(responses: [ok, bad], asBatch: true))
        guard case .array(let items) = try JSONCoding.parse(bytes) else {
            Issue.record("expected array")
            return
        }
        #expect(items.compactMap(RPCResponse.init(json:)) == [ok, bad])
    }
}
