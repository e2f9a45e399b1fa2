//! [`AnnounceEvent`], the `event` of an announce.

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// The peer joined.
    Started,
    /// The peer left.
    Stopped,
    /// The peer finished downloading.
    Completed,
    /// A periodic announce (also `empty`, `paused` and a missing event).
    Update,
    /// The peer paused (treated as an update).
    Paused,
}

impl AnnounceEvent {
    /// Parses an event name; `None` for unknown names. `""`/`empty`/`update` are updates.
    #[inline]
    pub fn parse(name: &str) -> Option<AnnounceEvent> {
        match name {
            "started" => Some(AnnounceEvent::Started),
            "stopped" => Some(AnnounceEvent::Stopped),
            "completed" => Some(AnnounceEvent::Completed),
            "update" | "empty" | "" => Some(AnnounceEvent::Update),
            "paused" => Some(AnnounceEvent::Paused),
            _ => None,
        }
    }

    /// The wire name (`"update"` for [`AnnounceEvent::Update`]).
    pub fn name(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Stopped => "stopped",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Update => "update",
            AnnounceEvent::Paused => "paused",
        }
    }

    /// A periodic announce: clients leave the `event` field out.
    pub fn is_update(&self) -> bool {
        *self == AnnounceEvent::Update
    }
}
