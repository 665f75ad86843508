//! A POSIX shell kept running on the host for driftless's own bookkeeping
//! scripts (read the state, switch, list and remove releases, observe files).
//!
//! Each SSH command starts the user's login shell, which on many hosts reads
//! startup files that cost far more than the script itself; a drift check of
//! a host every interval, or the few steps of a rollout, would pay that each
//! time. The shell started once per connection runs every script as
//! `sh -c SCRIPT` with no input, its output and error written to files the
//! shell then prints behind a marker no script can guess, so each answer is
//! read back whole and apart from the next. Hooks and health commands, which
//! are the user's and may leave processes behind, keep a session of their own.

use base64::Engine;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};

use crate::remote::quote;
use crate::ssh::Output;

/// Sets up the files each script's output and error go to, removed when the
/// shell ends.
const PRELUDE: &str = "o=$(mktemp) && e=$(mktemp) && i=$(mktemp) || exit 1\n\
trap 'rm -f \"$o\" \"$e\" \"$i\"' EXIT HUP TERM\n";

/// The largest input sent through the shell (in the script's text, as
/// base64); larger uploads take a session of their own.
pub(crate) const MAX_INPUT: usize = 4 << 20;

/// A running shell and what it printed that was not read yet.
pub(crate) struct Shell {
    channel: Channel<Msg>,
    pending: Vec<u8>,
}

impl Shell {
    /// Starts `sh -s` over `channel` (a fresh session) and runs an empty
    /// script, so whatever the login shell's startup files print is read and
    /// dropped before the first real answer.
    pub(crate) async fn start(channel: Channel<Msg>) -> Result<Self, String> {
        channel
            .exec(true, "exec sh -s")
            .await
            .map_err(|e| e.to_string())?;
        channel
            .data(PRELUDE.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut shell = Self {
            channel,
            pending: Vec::new(),
        };
        let marker = marker();
        shell
            .send(&format!("printf '\\n%s 0 0 0\\n' {marker}\n"))
            .await?;
        shell.answer(&marker).await?;
        Ok(shell)
    }

    /// Sends one script to run with `input` (at most [`MAX_INPUT`] bytes)
    /// as its standard input; its marker, to read the answer with
    /// [`Shell::answer`]. An error means nothing was sent.
    pub(crate) async fn submit(
        &mut self,
        script: &str,
        input: Option<&[u8]>,
    ) -> Result<String, String> {
        let marker = marker();
        self.send(&frame(script, input, &marker)).await?;
        Ok(marker)
    }

    async fn send(&self, text: &str) -> Result<(), String> {
        self.channel
            .data(text.as_bytes())
            .await
            .map_err(|e| e.to_string())
    }

    /// What the script sent with `marker` printed and how it ended; an error
    /// when the shell ended first (the connection is gone).
    pub(crate) async fn answer(&mut self, marker: &str) -> Result<Output, String> {
        loop {
            if let Some((output, used)) = parse(&self.pending, marker) {
                self.pending.drain(..used);
                return Ok(output);
            }
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => self.pending.extend_from_slice(&data),
                // The shell's own complaints (a startup file's noise): scripts'
                // errors come back in the answer.
                Some(ChannelMsg::ExtendedData { .. }) => {}
                Some(ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. })
                | None => return Err("the shell on the host ended".into()),
                Some(_) => {}
            }
        }
    }

    /// Ends the shell (best effort).
    pub(crate) async fn close(self) {
        // A shell that is already gone has nothing left to close.
        let _ = self.channel.eof().await;
        let _ = self.channel.close().await;
    }
}

/// A marker that no output can contain by chance or by design.
fn marker() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Without the system's randomness, the time and the process still
        // make a marker no earlier output of this connection holds.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes[..8].copy_from_slice(&now.as_nanos().to_le_bytes()[..8]);
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    format!("DRIFTLESS-{}", hex::encode(bytes))
}

/// What the shell is sent for one script: its input first, decoded into a
/// file from a here-document (base64 cannot hold the line that ends it), then
/// the script run with that input or none, then a newline, the marker, its
/// status and the lengths of its output and error, then both.
fn frame(script: &str, input: Option<&[u8]>, marker: &str) -> String {
    let mut text = String::new();
    let stdin = match input {
        Some(data) => {
            text.push_str(&format!("base64 -d >\"$i\" 2>\"$e\" <<'{marker}-IN'\n"));
            let encoded = base64::engine::general_purpose::STANDARD.encode(data);
            for line in encoded.as_bytes().chunks(76) {
                text.push_str(std::str::from_utf8(line).unwrap_or_default());
                text.push('\n');
            }
            text.push_str(&format!("{marker}-IN\nif [ $? = 0 ]; then "));
            "\"$i\""
        }
        None => "/dev/null",
    };
    text.push_str(&format!(
        "sh -c {} <{stdin} >\"$o\" 2>\"$e\"",
        quote(script)
    ));
    if input.is_some() {
        text.push_str("; else : >\"$o\"; false; fi");
    }
    text.push_str(&format!(
        "; s=$?; printf '\\n%s %s %s %s\\n' {marker} \"$s\" \"$(wc -c <\"$o\")\" \"$(wc -c <\"$e\")\"; cat \"$o\" \"$e\"; : >\"$i\"\n"
    ));
    text
}

/// Reads one answer from the start of `buffer`: the output and how many bytes
/// it took, or `None` while it is incomplete. Anything before the marker is
/// noise the shell printed itself.
fn parse(buffer: &[u8], marker: &str) -> Option<(Output, usize)> {
    let needle = format!("\n{marker} ");
    let at = find(buffer, needle.as_bytes())?;
    let header_start = at + needle.len();
    let header_len = buffer[header_start..].iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&buffer[header_start..header_start + header_len]).ok()?;
    let mut fields = header.split_whitespace().map(|f| f.parse::<usize>().ok());
    let (status, out_len, err_len) = (fields.next()??, fields.next()??, fields.next()??);
    let body = header_start + header_len + 1;
    if buffer.len() < body + out_len + err_len {
        return None;
    }
    let output = Output {
        status: u32::try_from(status).ok(),
        stdout: buffer[body..body + out_len].to_vec(),
        stderr: buffer[body + out_len..body + out_len + err_len].to_vec(),
    };
    Some((output, body + out_len + err_len))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_read_whole_and_apart_from_noise_before_it() {
        let marker = marker();
        let mut buffer = b"motd noise\n".to_vec();
        buffer.extend_from_slice(format!("\n{marker} 3 6 4\n").as_bytes());
        buffer.extend_from_slice(b"out\n\0xbad\nrest of the next answer");
        let (output, used) = parse(&buffer, &marker).expect("a whole answer");
        assert_eq!(output.status, Some(3));
        assert_eq!(output.stdout, b"out\n\0x");
        assert_eq!(output.stderr, b"bad\n");
        assert_eq!(&buffer[used..], b"rest of the next answer");
    }

    #[test]
    fn a_partial_answer_waits_for_more() {
        let marker = marker();
        let whole = format!("\n{marker} 0 5 0\nhello");
        for cut in 0..whole.len() {
            assert!(parse(&whole.as_bytes()[..cut], &marker).is_none(), "{cut}");
        }
        assert!(parse(whole.as_bytes(), &marker).is_some());
        assert!(
            parse(whole.as_bytes(), &super::marker()).is_none(),
            "another marker"
        );
    }

    #[test]
    fn the_script_is_one_quoted_word_without_input() {
        let framed = frame("echo 'it''s' && exit 4", None, "M");
        assert!(framed.starts_with("sh -c 'echo '\\''it'\\'''\\''s'\\'' && exit 4' </dev/null"));
        assert!(framed.ends_with("cat \"$o\" \"$e\"; : >\"$i\"\n"));
        assert_eq!(framed.lines().count(), 1);
    }

    #[test]
    fn input_travels_as_a_here_document_the_script_reads() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let framed = frame("tar -x", Some(&data), "M");
        let (head, rest) = framed.split_once('\n').expect("a first line");
        assert_eq!(head, "base64 -d >\"$i\" 2>\"$e\" <<'M-IN'");
        let (body, tail) = rest.split_once("M-IN\n").expect("the end of the input");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body.replace('\n', ""))
            .expect("base64");
        assert_eq!(decoded, data);
        assert!(body.lines().all(|l| l.len() <= 76 && !l.contains('-')));
        assert!(tail.starts_with("if [ $? = 0 ]; then sh -c 'tar -x' <\"$i\" >\"$o\""));
    }
}
