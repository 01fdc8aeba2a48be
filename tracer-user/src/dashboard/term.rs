//! The terminal, owned for the dashboard's lifetime: raw mode and the
//! alternate screen on entry, both undone on drop — and by a panic hook, so a
//! panic's message lands on a usable terminal too.

use std::io::{stdout, Stdout};

use crossterm::{
    cursor, execute,
    terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{backend::CrosstermBackend, Terminal};

pub struct TermGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// Undoes what [`TermGuard::enter`] did; safe to call twice.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, cursor::Show);
}

impl TermGuard {
    pub fn enter() -> std::io::Result<TermGuard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        if let Err(e) = execute!(stdout(), EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        let terminal = match Terminal::new(CrosstermBackend::new(stdout())) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        Ok(TermGuard { terminal })
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore();
    }
}
