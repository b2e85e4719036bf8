from voicebot.cli import main

main()
