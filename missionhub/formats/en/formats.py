# Times in timelines and histories: "Nov 27, 09:00".
SHORT_DATETIME_FORMAT = "M j, H:i"
