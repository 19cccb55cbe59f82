# Times in timelines and histories: "11월 27일 09:00".
SHORT_DATETIME_FORMAT = "n월 j일 H:i"
